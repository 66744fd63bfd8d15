// encode.cpp -- a C++ host of fastae: loads a model file (saved by Python's save or by
// fastae::save_model), reads samples from a CSV file and writes their codes to another; with
// --predict, the network's outputs instead (an autoencoder's reconstructions, an MLPClassifier's
// class probabilities, an MLPRegressor's predictions).
//
//   fastae_encode MODEL.fae SAMPLES.csv CODES.csv [--predict]
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include <fastae/fastae.h>

#include "csv_samples.h"

int main(int argc, char** argv) {
    const bool predict = argc == 5 && std::string(argv[4]) == "--predict";
    if (argc != 4 && !predict) {
        std::fprintf(stderr, "usage: %s MODEL.fae SAMPLES.csv CODES.csv [--predict]\n", argv[0]);
        return 2;
    }
    try {
        const fastae::Model model = fastae::load_model(argv[1]).model;
        const Samples x = read_csv(argv[2]);
        if (x.d != std::size_t(model.n_inputs())) {
            throw std::runtime_error(std::string(argv[2]) + " has " + std::to_string(x.d) +
                                     " features; the model expects " + std::to_string(model.n_inputs()));
        }
        const int width = predict ? model.n_outputs() : model.code_size();
        std::vector<float> out(x.n * std::size_t(width));  // row-major (n, width)
        if (predict) {
            model.predict(x.n, x.values.data(), out.data());
        } else {
            model.encode(x.n, x.values.data(), out.data());
        }
        write_csv(argv[3], x.n, std::size_t(width), out.data());
        std::printf("%zu samples of %zu features -> %s of %d in %s\n", x.n, x.d, predict ? "outputs" : "codes", width,
                    argv[3]);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
