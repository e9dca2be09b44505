#pragma once
// Writing a model for other tools (`duet export`) and reading weights from them
// (`model.init_from`, `duet embed --checkpoint`), plus locking the image tower (LiT).
//
// Sources init_from and load_weights accept, told apart by what the path holds:
//   a duet checkpoint directory     checkpoints/step-NNNNNNNN (layout: train/checkpoint.h)
//   a transformers directory        config.json + model.safetensors (CLIPModel / SiglipModel)
//   an OpenCLIP directory           open_clip_config.json + open_clip_model.safetensors
//   a .safetensors file             duet's names (`duet export --format safetensors`),
//                                   OpenCLIP's, or transformers' (told apart by the keys)
// Whatever the source, every parameter must be found with its shape and every tensor used;
// otherwise the error lists each offending key and the model is left unchanged.
#include <string>
#include <vector>

#include "config/config.h"
#include "export/key_map.h"
#include "text/tokenizer.h"

namespace duet::train {
struct CheckpointInfo;
}

namespace duet::models {
class ClipModelImpl;
}

namespace duet::export_ {

// Writes `model` in `format` to `out`: a directory for hf and open_clip (created; files in it
// replaced), a .safetensors file for duet's own format. `dtype` is float32, float16 or
// bfloat16. Refuses (a runtime Error listing unsupported()'s reasons) a model the format
// cannot hold exactly. Returns the paths written; `notes` gets what the user should know
// (tokenizer files that could not be written, ...).
std::vector<std::string> export_model(const models::ClipModelImpl& model,
                                      const config::Config& config,
                                      const text::Tokenizer& tokenizer, Format format,
                                      const std::string& dtype, const std::string& out,
                                      std::vector<std::string>& notes);

// Loads the weights at `path` (any source above) into `model`.
void load_weights(models::ClipModelImpl& model, const std::string& path);
// The same for a duet checkpoint validated already (train::CheckpointStore::validate's result).
void load_weights(models::ClipModelImpl& model, const train::CheckpointInfo& checkpoint);

// Freezes the image tower (every visual.* parameter stops requiring grad).
void lock_image_tower(models::ClipModelImpl& model);

// What model.init_from and model.lock_image ask for, right after the model is built: loads the
// init_from weights (when `load` and init_from is set) and locks the image tower.
void prepare_model(models::ClipModelImpl& model, const config::ModelConfig& config,
                   bool load = true);

}  // namespace duet::export_
