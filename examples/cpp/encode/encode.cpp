// encode.cpp -- a C++ host of fastae: loads a model file (saved by Python's ae.save or by
// fastae::save_model), reads samples from a CSV file and writes their codes to another.
//
//   fastae_encode MODEL.fae SAMPLES.csv CODES.csv
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include <fastae/fastae.h>

#include "csv_samples.h"

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: %s MODEL.fae SAMPLES.csv CODES.csv\n", argv[0]);
        return 2;
    }
    try {
        const fastae::Model model = fastae::load_model(argv[1]).model;
        const Samples x = read_csv(argv[2]);
        if (x.d != std::size_t(model.n_inputs())) {
            throw std::runtime_error(std::string(argv[2]) + " has " + std::to_string(x.d) +
                                     " features; the model expects " + std::to_string(model.n_inputs()));
        }
        std::vector<float> codes(x.n * std::size_t(model.code_size()));  // row-major (n, code_size)
        model.encode(x.n, x.values.data(), codes.data());
        write_csv(argv[3], x.n, std::size_t(model.code_size()), codes.data());
        std::printf("%zu samples of %zu features -> codes of %d in %s\n", x.n, x.d, model.code_size(), argv[3]);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
