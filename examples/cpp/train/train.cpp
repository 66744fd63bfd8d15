// train.cpp -- trains, in C++, the autoencoder fastae.Autoencoder would train in Python (same
// defaults: relu hidden layers, sigmoid output, binary cross-entropy, Adam), on samples in [0, 1]
// from a CSV file, and saves it; Python loads it with fastae.load(path). With the same seed and
// settings the weights equal Python's bit for bit (see fastae/autoencoder.h).
//
//   fastae_train SAMPLES.csv MODEL.fae [--hidden 64 ...] [--activation relu] [--epochs 10]
//                [--batch-size 256] [--learning-rate 0.001] [--seed 0] [--threads 1]
//                [--stop-below LOSS] [--validation-split F] [--early-stopping PATIENCE]
//
// --early-stopping: stop once PATIENCE epochs in a row have not improved the validation loss (or,
// without --validation-split, the training loss), and keep the best epoch's weights.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include <fastae/fastae.h>

#include "csv_samples.h"

namespace {

struct Args {
    std::string samples, model;
    std::vector<int> hidden{64};
    std::string activation = "relu";
    int epochs = 10, batch_size = 256, threads = 1;
    double learning_rate = 1e-3;
    double stop_below = 0.0;  // stop once an epoch's loss is below this (0: never)
    double validation_split = 0.0;
    int patience = 0;         // early stopping's patience (0: no early stopping)
    std::uint64_t seed = 0;
};

bool is_count(const char* s) { return *s && std::strspn(s, "0123456789") == std::strlen(s); }

Args parse(int argc, char** argv) {
    Args a;
    std::vector<std::string> positional;
    for (int i = 1; i < argc; ++i) {
        const std::string flag = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) throw std::invalid_argument(flag + " needs a value");
            return argv[++i];
        };
        if (flag == "--hidden") {
            a.hidden = {std::stoi(value())};
            while (i + 1 < argc && is_count(argv[i + 1])) a.hidden.push_back(std::stoi(argv[++i]));
        } else if (flag == "--activation") {
            a.activation = value();
        } else if (flag == "--epochs") {
            a.epochs = std::stoi(value());
        } else if (flag == "--batch-size") {
            a.batch_size = std::stoi(value());
        } else if (flag == "--learning-rate") {
            a.learning_rate = std::stod(value());
        } else if (flag == "--seed") {
            a.seed = std::stoull(value());
        } else if (flag == "--threads") {
            a.threads = std::stoi(value());
        } else if (flag == "--stop-below") {
            a.stop_below = std::stod(value());
        } else if (flag == "--validation-split") {
            a.validation_split = std::stod(value());
        } else if (flag == "--early-stopping") {
            a.patience = std::stoi(value());
        } else if (flag.rfind("--", 0) == 0) {
            throw std::invalid_argument("unknown option " + flag);
        } else {
            positional.push_back(flag);
        }
    }
    if (positional.size() != 2) throw std::invalid_argument("expected SAMPLES.csv and MODEL.fae");
    a.samples = positional[0];
    a.model = positional[1];
    return a;
}

}  // namespace

int main(int argc, char** argv) {
    Args args;
    try {
        args = parse(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\nusage: %s SAMPLES.csv MODEL.fae [--hidden 64 ...] [--activation relu] "
                             "[--epochs 10] [--batch-size 256] [--learning-rate 0.001] [--seed 0] [--threads 1] "
                             "[--stop-below LOSS] [--validation-split F] [--early-stopping PATIENCE]\n",
                     e.what(), argv[0]);
        return 2;
    }
    try {
        const Samples x = read_csv(args.samples);

        fastae::NetworkConfig config;  // sigmoid output and bce loss are the defaults
        config.layer_sizes = fastae::autoencoder_layer_sizes(int(x.d), args.hidden);
        config.activation = fastae::parse_activation(args.activation);
        fastae::Model model(config);
        model.init_weights(args.seed);  // as fastae.Autoencoder(random_state=seed)

        fastae::OptimizerConfig adam;
        adam.learning_rate = args.learning_rate;
        fastae::TrainOptions options;
        options.epochs = args.epochs;
        options.batch_size = args.batch_size;
        options.n_threads = args.threads;
        options.seed = fastae::autoencoder_shuffle_seed(args.seed);
        options.validation_split = args.validation_split;  // a seeded random subset of the rows
        options.early_stopping = args.patience > 0;
        options.patience = std::max(args.patience, 1);
        options.restore_best_weights = true;              // end with the best epoch's weights
        options.on_epoch = [&](const fastae::EpochReport& r) {
            std::printf("epoch %d/%d  loss %.6f", r.epoch, args.epochs, r.loss);
            if (r.has_val_loss) std::printf("  val_loss %.6f", r.val_loss);
            std::printf("%s  %.3f s\n", r.improved ? "  (best)" : "", r.seconds);
            return !(r.loss < args.stop_below);  // false stops training
        };
        fastae::TrainingData data;
        data.n = x.n;
        data.x = x.values.data();
        const fastae::StopReason reason = model.fit(data, nullptr, adam, options);
        if (reason == fastae::StopReason::early_stopping) std::printf("stopped early; kept the best epoch's weights\n");

        fastae::save_model(model, args.model);  // with Adam's state, so training can resume
        std::printf("saved %s\n", args.model.c_str());
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
