// mpi_train.cpp -- the autoencoder of examples/cpp/train, trained data-parallel over MPI: every
// rank reads the CSV file, keeps its contiguous block of rows (rank order, as
// fastae.distributed.shard cuts them), and Model::fit runs the epoch loop with
// TrainOptions::processes, whose sum is MPI_Allreduce. Every rank ends with the same weights, those
// one process would have on the whole file up to float summation order; rank 0 saves.
//
//   mpiexec -n R fastae_mpi_train SAMPLES.csv MODEL.fae [--hidden 64 ...] [--epochs 10]
//                                 [--batch-size 256] [--seed 0]
//
// A host with its own loop does the same with the three-call step (fastae/training.h): per batch,
// compute_gradients on its rows (Batch::global_size = the whole batch), reduce, MPI_Allreduce of
// gradient() and of the loss, apply.
#include <mpi.h>

#include <cstdio>
#include <cstdlib>
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
    int epochs = 10, batch_size = 256;
    std::uint64_t seed = 0;
};

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
            while (i + 1 < argc && argv[i + 1][0] != '-') a.hidden.push_back(std::stoi(argv[++i]));
        } else if (flag == "--epochs") {
            a.epochs = std::stoi(value());
        } else if (flag == "--batch-size") {
            a.batch_size = std::stoi(value());
        } else if (flag == "--seed") {
            a.seed = std::stoull(value());
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

// Rows [begin, end) of n that rank r of size holds (numpy.array_split's cut).
std::pair<std::size_t, std::size_t> block_of(std::size_t n, int r, int size) {
    const std::size_t base = n / std::size_t(size), extra = n % std::size_t(size), rank = std::size_t(r);
    const std::size_t begin = rank * base + std::min(rank, extra);
    return {begin, begin + base + (rank < extra ? 1 : 0)};
}

int run(const Args& args, int rank, int size) {
    const Samples all = read_csv(args.samples);
    const auto [begin, end] = block_of(all.n, rank, size);
    const std::vector<float> mine(all.values.begin() + std::ptrdiff_t(begin * all.d),
                                  all.values.begin() + std::ptrdiff_t(end * all.d));

    fastae::NetworkConfig config;  // sigmoid output and bce loss, as fastae.Autoencoder on [0, 1] data
    config.layer_sizes = fastae::autoencoder_layer_sizes(int(all.d), args.hidden);
    fastae::Model model(config);
    model.init_weights(args.seed);  // the same seed on every rank: the same initial weights

    fastae::OptimizerConfig adam;
    fastae::TrainOptions options;
    options.epochs = args.epochs;
    options.batch_size = args.batch_size;
    options.seed = fastae::autoencoder_shuffle_seed(args.seed);
    options.processes.global_rows = all.n;
    options.processes.row_offset = begin;
    options.processes.lead = rank == 0;
    options.processes.sum = [](float* values, std::size_t n, double* figures, std::size_t n_figures) {
        if (n_figures) MPI_Allreduce(MPI_IN_PLACE, figures, int(n_figures), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        if (n) MPI_Allreduce(MPI_IN_PLACE, values, int(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    };
    options.on_epoch = [&](const fastae::EpochReport& r) {
        if (rank == 0) std::printf("epoch %d/%d  loss %.6f  %.3f s\n", r.epoch, args.epochs, r.loss, r.seconds);
        return true;
    };
    fastae::TrainingData data;
    data.n = end - begin;
    data.x = mine.data();
    model.fit(data, nullptr, adam, options);
    if (rank == 0) {
        fastae::save_model(model, args.model);
        std::printf("saved %s (%d ranks)\n", args.model.c_str(), size);
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    MPI_Init(&argc, &argv);
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int status = 0;
    try {
        status = run(parse(argc, argv), rank, size);
    } catch (const fastae::PeerFailed&) {
        status = 1;  // the failing rank prints its own error
    } catch (const std::exception& e) {
        // This rank's own error. Failures inside fit are announced to the others (which throw
        // PeerFailed); one before it (an unreadable file on this host) would leave them waiting,
        // so the whole job is aborted.
        std::fprintf(stderr, "rank %d: error: %s\n", rank, e.what());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    MPI_Finalize();
    return status;
}
