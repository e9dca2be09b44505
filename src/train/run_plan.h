#pragma once
// Everything a training run decides before it builds a model, the same on every rank: the
// device, the ranks and their communicator, the run directory, whether and where to resume, and
// how many steps to take.
//
// Invariants:
//  - Rank 0 alone touches the run directory (creates it, writes config.yaml, looks for
//    checkpoints). It hands its decision - fresh, resume from this checkpoint, or the error that
//    stops the job - to the other ranks as one typed value, so every rank resumes from the same
//    checkpoint or stops with the same error (and the same exit code).
//  - A CUDA device always carries an index: the rank's GPU under a launcher, cuda:0 for one
//    process (the NCCL communicator needs it).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <torch/types.h>

#include "config/config.h"
#include "distributed/communicator.h"
#include "distributed/launch.h"
#include "train/checkpoint_store.h"

namespace duet::train {

struct TrainOptions;

struct RunPlan {
  torch::Device device = torch::kCPU;
  distributed::LaunchInfo launch;
  std::unique_ptr<distributed::Communicator> comm;
  int rank = 0;
  int world_size = 1;
  bool writer = true;  // rank 0: writes the run directory, checkpoints and metrics
  // The ranks exchange embeddings, gradients and losses: a multi-process backend, even for one
  // rank (distributed.backend gloo or nccl with one process runs the same collectives).
  bool collective = false;
  std::string run_name;
  std::string run_dir;
  std::optional<CheckpointStore> store;  // rank 0 only
  std::optional<CheckpointInfo> resume;  // where to resume from; nullopt: a fresh run
  int64_t micro_batch = 0;               // samples a rank encodes at a time
  int64_t total_steps = 0;               // train.steps, or the steps of train.epochs
};

// Plans the run that `config` describes. Throws config Errors (on every rank alike) for
// impossible choices: a batch that does not divide among ranks and accumulation steps, a run
// directory that already holds checkpoints without checkpoint.resume, ...
RunPlan plan_run(const config::Config& config, const TrainOptions& options);

// The device to train on: train.device against the number of CUDA devices this process sees,
// `cuda_devices`. auto: the rank's GPU when there is one, else the CPU; cuda: the rank's GPU or a
// config Error. Under a launcher the rank's GPU is distributed::cuda_device_index's; alone, 0.
torch::Device training_device(config::DeviceChoice choice, const distributed::LaunchInfo& launch,
                              int cuda_devices);

}  // namespace duet::train
