// config.cpp -- names of activations, losses and optimizers, their parsers, and build_info.
#include <stdexcept>
#include <string>

#include <Eigen/Core>

#include "fastae/config.h"
#include "fastae/version.h"

namespace fastae {

const char* name_of(Activation a) {
    switch (a) {
        case Activation::linear: return "linear";
        case Activation::relu: return "relu";
        case Activation::sigmoid: return "sigmoid";
        case Activation::tanh: return "tanh";
    }
    return "?";
}

const char* name_of(Loss l) {
    switch (l) {
        case Loss::mse: return "mse";
        case Loss::bce: return "bce";
    }
    return "?";
}

const char* name_of(OptimizerKind o) {
    switch (o) {
        case OptimizerKind::adam: return "adam";
        case OptimizerKind::sgd: return "sgd";
    }
    return "?";
}

Activation parse_activation(const std::string& name) {
    for (Activation a : {Activation::linear, Activation::relu, Activation::sigmoid, Activation::tanh}) {
        if (name == name_of(a)) return a;
    }
    throw std::invalid_argument("unknown activation '" + name +
                                "'; allowed: 'linear', 'relu', 'sigmoid', 'tanh'");
}

Loss parse_loss(const std::string& name) {
    for (Loss l : {Loss::mse, Loss::bce}) {
        if (name == name_of(l)) return l;
    }
    throw std::invalid_argument("unknown loss '" + name + "'; allowed: 'mse', 'bce'");
}

OptimizerKind parse_optimizer(const std::string& name) {
    for (OptimizerKind o : {OptimizerKind::adam, OptimizerKind::sgd}) {
        if (name == name_of(o)) return o;
    }
    throw std::invalid_argument("unknown optimizer '" + name + "'; allowed: 'adam', 'sgd'");
}

std::string build_info() {
    return "fastae " + std::string(version_string) + ", SIMD: " + Eigen::SimdInstructionSetsInUse() +
           ", Eigen " + std::to_string(EIGEN_WORLD_VERSION) + "." + std::to_string(EIGEN_MAJOR_VERSION) +
           "." + std::to_string(EIGEN_MINOR_VERSION);
}

}  // namespace fastae
