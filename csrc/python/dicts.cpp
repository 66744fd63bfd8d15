// dicts.cpp -- fastae._core's dicts (dicts.h).
#include "dicts.h"

#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <utility>

using fastae::Model;

namespace fastae_binding {

py::dict settings_to_dict(const fastae::OptimizerConfig& c) {
    py::dict d;
    d["optimizer"] = fastae::name_of(c.kind);
    d["learning_rate"] = c.learning_rate;
    d["beta1"] = c.beta1;
    d["beta2"] = c.beta2;
    d["epsilon"] = c.epsilon;
    d["momentum"] = c.momentum;
    d["nesterov"] = c.nesterov;
    d["weight_decay"] = c.weight_decay;
    d["rho"] = c.rho;
    return d;
}

fastae::OptimizerConfig settings_from_dict(const py::dict& d) {
    auto get = [&](const char* key) -> py::object {
        if (!d.contains(key)) throw std::invalid_argument(std::string("optimizer settings lack '") + key + "'");
        return d[key];
    };
    fastae::OptimizerConfig c;
    c.kind = fastae::parse_optimizer(get("optimizer").cast<std::string>());
    c.learning_rate = get("learning_rate").cast<double>();
    c.beta1 = get("beta1").cast<double>();
    c.beta2 = get("beta2").cast<double>();
    c.epsilon = get("epsilon").cast<double>();
    c.momentum = get("momentum").cast<double>();
    c.nesterov = get("nesterov").cast<bool>();
    // Settings written before these existed (an older fastae's pickles) take the defaults.
    if (d.contains("weight_decay")) c.weight_decay = d["weight_decay"].cast<double>();
    if (d.contains("rho")) c.rho = d["rho"].cast<double>();
    return c;
}

// The network as {"n_inputs", "code_layer", "loss", "huber_delta", "layers": [{"units",
// "activation", "alpha", "initializer", "l1", "l2", "dropout", "noise", "noise_level",
// "activity_l1", "sparsity_target", "sparsity_weight", "contractive", "tied_to", "trainable"}, ...]}
// (fastae::NetworkSpec), and for a variational network "variational": {"beta", "kl_warmup_epochs"}.
py::dict spec_to_dict(const fastae::NetworkSpec& spec) {
    py::list layers;
    for (const fastae::LayerSpec& l : spec.layers) {
        py::dict d;
        d["units"] = l.units;
        d["activation"] = fastae::name_of(l.activation.kind);
        d["alpha"] = l.activation.alpha;
        d["initializer"] = fastae::name_of(l.initializer);
        d["l1"] = l.l1;
        d["l2"] = l.l2;
        d["dropout"] = l.dropout;
        d["noise"] = fastae::name_of(l.noise);
        d["noise_level"] = l.noise_level;
        d["activity_l1"] = l.activity_l1;
        d["sparsity_target"] = l.sparsity_target;
        d["sparsity_weight"] = l.sparsity_weight;
        d["contractive"] = l.contractive;
        d["tied_to"] = l.tied_to;
        d["trainable"] = l.trainable;
        layers.append(d);
    }
    py::dict d;
    d["n_inputs"] = spec.n_inputs;
    d["code_layer"] = spec.code_layer;
    d["loss"] = fastae::name_of(spec.head.loss);
    d["huber_delta"] = spec.head.huber_delta;
    d["layers"] = layers;
    if (spec.variational.enabled) {
        py::dict v;
        v["beta"] = spec.variational.beta;
        v["kl_warmup_epochs"] = spec.variational.kl_warmup_epochs;
        d["variational"] = v;
    }
    return d;
}

// The inverse; absent optional keys take LayerSpec's and HeadSpec's defaults (the activation's
// alpha: default_alpha). Unknown keys are errors, so a misspelt option is not silently ignored.
fastae::NetworkSpec spec_from_dict(const py::dict& d) {
    auto check_keys = [](const py::dict& dict, std::initializer_list<const char*> known, const char* what) {
        for (const auto& item : dict) {
            const std::string key = py::str(item.first);
            bool ok = false;
            for (const char* k : known) ok = ok || key == k;
            if (!ok) throw std::invalid_argument(std::string("unknown key '") + key + "' in " + what);
        }
    };
    check_keys(d, {"n_inputs", "code_layer", "loss", "huber_delta", "layers", "variational"}, "the network spec");
    fastae::NetworkSpec spec;
    spec.n_inputs = d["n_inputs"].cast<int>();
    if (d.contains("code_layer")) spec.code_layer = d["code_layer"].cast<int>();
    if (d.contains("loss")) spec.head.loss = fastae::parse_loss(d["loss"].cast<std::string>());
    if (d.contains("huber_delta")) spec.head.huber_delta = d["huber_delta"].cast<double>();
    if (d.contains("variational")) {
        const py::dict v = d["variational"].cast<py::dict>();
        check_keys(v, {"beta", "kl_warmup_epochs"}, "the variational spec");
        spec.variational.enabled = true;
        if (v.contains("beta")) spec.variational.beta = v["beta"].cast<double>();
        if (v.contains("kl_warmup_epochs")) spec.variational.kl_warmup_epochs = v["kl_warmup_epochs"].cast<int>();
    }
    for (const py::handle& item : d["layers"].cast<py::list>()) {
        const py::dict l = item.cast<py::dict>();
        check_keys(l, {"units", "activation", "alpha", "initializer", "l1", "l2", "dropout", "noise", "noise_level",
                       "activity_l1", "sparsity_target", "sparsity_weight", "contractive", "tied_to", "trainable"},
                   "a layer spec");
        fastae::LayerSpec layer;
        layer.units = l["units"].cast<int>();
        if (l.contains("activation")) {
            layer.activation = fastae::activation_spec(fastae::parse_activation(l["activation"].cast<std::string>()));
        }
        if (l.contains("alpha")) layer.activation.alpha = l["alpha"].cast<double>();
        if (l.contains("initializer")) layer.initializer = fastae::parse_initializer(l["initializer"].cast<std::string>());
        if (l.contains("l1")) layer.l1 = l["l1"].cast<double>();
        if (l.contains("l2")) layer.l2 = l["l2"].cast<double>();
        if (l.contains("dropout")) layer.dropout = l["dropout"].cast<double>();
        if (l.contains("noise")) layer.noise = fastae::parse_noise(l["noise"].cast<std::string>());
        if (l.contains("noise_level")) layer.noise_level = l["noise_level"].cast<double>();
        if (l.contains("activity_l1")) layer.activity_l1 = l["activity_l1"].cast<double>();
        if (l.contains("sparsity_target")) layer.sparsity_target = l["sparsity_target"].cast<double>();
        if (l.contains("sparsity_weight")) layer.sparsity_weight = l["sparsity_weight"].cast<double>();
        if (l.contains("contractive")) layer.contractive = l["contractive"].cast<double>();
        if (l.contains("tied_to")) layer.tied_to = l["tied_to"].cast<int>();
        if (l.contains("trainable")) layer.trainable = l["trainable"].cast<bool>();
        spec.layers.push_back(layer);
    }
    return spec;
}

// The optimizer state as {"config": settings, "steps": int, "m": array, "v": array}, or None.
// A copy taken under the model's use guard (model.h, "Threads").
py::object optimizer_state_to_python(const Model& m) {
    const std::optional<fastae::OptimizerState> s = m.copy_optimizer_state();
    if (!s) return py::none();
    py::dict d;
    d["config"] = settings_to_dict(s->config);
    d["steps"] = s->steps;
    d["m"] = FloatArray(static_cast<py::ssize_t>(s->m.size()), s->m.data());
    d["v"] = FloatArray(static_cast<py::ssize_t>(s->v.size()), s->v.data());
    return std::move(d);
}

void set_optimizer_state_from_python(Model& m, const py::dict& d) {
    fastae::OptimizerState s;
    s.config = settings_from_dict(d["config"].cast<py::dict>());
    s.steps = d["steps"].cast<std::int64_t>();
    for (const char* key : {"m", "v"}) {
        const auto a = d[key].cast<FloatArray>();
        if (a.ndim() != 1) throw std::invalid_argument(std::string("optimizer state ") + key + " must be 1-D");
        (key[0] == 'm' ? s.m : s.v).assign(a.data(), a.data() + a.shape(0));
    }
    m.set_optimizer_state(s);
}

fastae::SaveOptions save_options(const std::optional<py::dict>& optimizer, bool include_optimizer_state,
                                 const py::bytes& metadata) {
    fastae::SaveOptions o;
    if (optimizer) o.optimizer = settings_from_dict(*optimizer);
    o.include_optimizer_state = include_optimizer_state;
    o.metadata = static_cast<std::string>(metadata);
    return o;
}

py::tuple model_file_to_python(fastae::ModelFile&& file) {
    return py::make_tuple(py::cast(std::move(file.model)), settings_to_dict(file.optimizer),
                          py::bytes(file.metadata));
}

}  // namespace fastae_binding
