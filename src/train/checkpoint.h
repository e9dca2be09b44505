#pragma once
// What a checkpoint holds, in its one layout, for every reader and writer: the trainer saves and
// resumes through this module, and `duet eval`, `export`, `embed`, `retrieve` and
// model.init_from read model weights through it. No other file names a checkpoint's files.
//
// RUN_DIR/checkpoints/step-NNNNNNNN/ (atomic saves, CRCs, keep-last-K: checkpoint_store.h):
//   model.pt       the model's parameters and buffers (torch::save of the module)
//   optimizer.pt   the optimiser's state (CheckpointedOptimizer::save)
//   ranks.json     one entry per rank, in rank order: its data loader position and its random
//                  generators, the CPU one and, when it trained on a GPU, that GPU's one
//   manifest.json  sizes and CRC-32s of the files above; step, world_size, config, version
// One rank or many: the same files (ranks.json has one entry or many).
//
// Invariants:
//  - Readers say where tensors go. Model weights load to the CPU unless a device is named, so a
//    checkpoint written on a GPU is read on a machine without one; resuming loads to the
//    training device.
//  - Resuming restores every rank's loader position and generators, so a resumed run draws the
//    same batches, augmentations and dropout masks (patch dropout draws on the GPU) as the
//    uninterrupted one.
//  - Every read validates the checkpoint first (manifest, sizes, CRCs).
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/serialize/archive.h>
#include <torch/types.h>
#include <nlohmann/json.hpp>

#include "config/config.h"

#include "train/checkpoint_store.h"

namespace duet::train {

// What a checkpoint needs from an optimiser: its state as archive entries, and back.
class CheckpointedOptimizer {
 public:
  virtual ~CheckpointedOptimizer() = default;
  virtual void save(torch::serialize::OutputArchive& archive) const = 0;
  // Reads what save() wrote into this optimiser (same parameters), its tensors on `device`.
  // Throws a runtime Error when the archive does not fit.
  virtual void load(torch::serialize::InputArchive& archive, const torch::Device& device) = 0;
};

// One rank's part of the training state (the model and optimiser are the same on every rank).
struct RankState {
  nlohmann::json loader;   // data::Loader::state()
  torch::Tensor cpu_rng;   // [bytes] uint8: the default CPU generator's state
  torch::Tensor cuda_rng;  // [bytes] uint8: the training GPU's generator; undefined on the CPU

  // As text that crosses ranks (Communicator::all_gather_text) and lands in ranks.json.
  nlohmann::json to_json() const;
  // `where` names the source in messages. Throws a runtime Error for malformed input.
  static RankState from_json(const nlohmann::json& json, const std::string& where);
};

// This process's generators (and `device`'s when it is a CUDA device) with `loader_state`.
RankState capture_rank_state(const std::string& loader_state, const torch::Device& device);

// Sets this process's generators from `state`: the CPU one, and `device`'s from the saved CUDA
// state. A CUDA state with nowhere to go (resumed on the CPU), or a CUDA device without a saved
// state, is logged as a warning: the run then continues, but not as the uninterrupted one would.
void restore_generators(const RankState& state, const torch::Device& device,
                        const std::string& checkpoint);

// Writes a checkpoint for `step` through `store`: the model, the optimiser and `ranks` (every
// rank's state, in rank order), with `config_yaml` (the resolved config) in the manifest.
// Returns the checkpoint's path.
std::string save_checkpoint(CheckpointStore& store, int64_t step, const std::string& config_yaml,
                            const torch::nn::Module& model, const CheckpointedOptimizer& optimizer,
                            const std::vector<RankState>& ranks);

// The number of ranks that wrote `checkpoint` (1 for checkpoints of one process).
int checkpoint_world_size(const CheckpointInfo& checkpoint);

// The resolved config stored with `checkpoint`, as YAML text.
std::string checkpoint_config(const CheckpointInfo& checkpoint);

// That config loaded, with `overrides` (--set KEY=VALUE) applied; errors name it as
// CHECKPOINT/config.
config::Config load_checkpoint_config(const CheckpointInfo& checkpoint,
                                      const std::vector<std::string>& overrides = {});

// Restores a run from `checkpoint`: model weights and optimiser state onto `device` (where the
// model already is), and returns rank `rank`'s state for the caller to restore (its loader
// position; its generators with restore_generators). A config Error when the checkpoint was
// written by another number of ranks; a runtime Error when it predates this layout or does not
// fit the model.
RankState load_for_resume(const CheckpointInfo& checkpoint, int rank, int world_size,
                          torch::nn::Module& model, CheckpointedOptimizer& optimizer,
                          const torch::Device& device);

// Every tensor of a checkpoint's model file by its name in the module ("visual.conv1.weight"),
// on the CPU, after validating the checkpoint. For importers (export::load_weights).
std::map<std::string, torch::Tensor> read_model_tensors(const std::string& checkpoint);
// The same for a checkpoint validated already (CheckpointStore::validate's result).
std::map<std::string, torch::Tensor> read_model_tensors(const CheckpointInfo& checkpoint);

// Copies the checkpoint's model weights into `model` (wherever its parameters live). Every
// parameter and buffer must be present with its shape and every saved tensor used; otherwise a
// runtime Error names the checkpoint and the offending names, and the model is left unchanged.
void load_model_weights(torch::nn::Module& model, const std::string& checkpoint);
void load_model_weights(torch::nn::Module& model, const CheckpointInfo& checkpoint);

// True when `path` is a duet checkpoint directory (it holds a manifest), valid or not.
bool is_checkpoint_dir(const std::string& path);

}  // namespace duet::train
