// fastae/model_file.h -- saving and loading a model: the one implementation of fastae's versioned
// binary model file (byte layout in docs/model-format.md), to a path or to a byte buffer.
// Writes version 2 (tagged sections); reads versions 1 and 2. Standard library only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "fastae/config.h"
#include "fastae/model.h"

namespace fastae {

// The format version this library writes. It reads every version from model_file_oldest_version
// to model_file_version (1 and 2): a version-1 file loads exactly as the fastae that wrote it
// loaded it, and saving it again writes version 2.
inline constexpr std::uint32_t model_file_version = 2;
inline constexpr std::uint32_t model_file_oldest_version = 1;
// Limits a reader enforces (a file beyond them is rejected before anything is allocated).
inline constexpr std::size_t model_file_max_widths = 4096;          // layer widths (version 1)
inline constexpr std::size_t model_file_max_layers = model_file_max_widths - 1;  // dense layers
inline constexpr std::size_t model_file_max_metadata = 1u << 20;   // bytes of metadata

// A model file that is not one: truncated, corrupted (checksum), of another version, or holding
// values out of range. The message names the problem and, where it has one, the byte offset
// (and, in a version-2 file, the section: "section PARM at byte 412: ...").
class ModelFileError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct SaveOptions {
    // The optimizer settings recorded in the file (the ones to continue training with). Unset:
    // those of the model's optimizer state when it has one, else OptimizerConfig{}.
    std::optional<OptimizerConfig> optimizer;
    // Store the model's optimizer state (Adam's moments and step count: about twice the size of
    // the weights) so training can resume exactly; ignored when the model has none.
    bool include_optimizer_state = true;
    // Free bytes stored verbatim, at most model_file_max_metadata. Never interpreted by the C++
    // library; Python keeps its estimator's hyperparameters here as UTF-8 JSON.
    std::string metadata;
};

// Everything a model file holds.
struct ModelFile {
    Model model;                // shape, weights, and the optimizer state when the file has one
    OptimizerConfig optimizer;  // the recorded optimizer settings (version 1 files store neither
                                // weight_decay nor rho: those keep OptimizerConfig's defaults)
    std::string metadata;
    std::uint32_t version = model_file_version;  // the format version the file was written in
};

// The model file (version model_file_version) as bytes. Throws std::invalid_argument for bad
// options (optimizer settings out of range, metadata too long) and for a model no file can hold
// (more than model_file_max_layers layers, a non-finite number in its spec).
std::vector<std::uint8_t> model_to_bytes(const Model& model, const SaveOptions& options = {});

// Parses and checks a whole model file held in memory, of any version this library reads. Throws
// ModelFileError naming the problem; never allocates more than the bytes given could hold.
ModelFile model_from_bytes(const void* data, std::size_t size);

// Writes the model file to `path` atomically: into a temporary file in the same folder, flushed
// to disk (fsync), then renamed over `path`. If anything fails the temporary file is removed,
// `path` keeps its previous content, and std::filesystem::filesystem_error (a std::runtime_error
// carrying the errno) is thrown; bad options throw std::invalid_argument before any write.
// A symbolic link at `path` is replaced by the file, not followed.
void save_model(const Model& model, const std::filesystem::path& path, const SaveOptions& options = {});

// Reads a model file. Throws std::filesystem::filesystem_error when the file cannot be read and
// ModelFileError (naming the path) when it is not a valid model file.
ModelFile load_model(const std::filesystem::path& path);

}  // namespace fastae
