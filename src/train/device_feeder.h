#pragma once
// Feeds each optimiser step its micro-batches on the training device without making the device
// wait on a copy. On a GPU the loader builds batches in pinned (page-locked) host memory; once
// a step's work is queued, the trainer calls prepare_next(), which draws the next step's batches
// and starts their copies with non_blocking on a side stream, so they run while the GPU still
// computes the current step. take() then makes the compute stream wait for those copies on the
// device (an event), never on the host. On the CPU batches pass through.
//
// Invariants:
//  - take() hands out the loader's batches in loader order, accum_steps per step, whether or
//    not they were prepared ahead: training does not depend on prefetching.
//  - loader_state() is the loader position after the batches handed out so far (not those
//    prepared ahead), so a checkpoint resumes at the next step's batches.
//  - Device memory written on the side stream is marked as used by the compute stream
//    (record_stream) before the step reads it, so the caching allocator cannot reuse it early.
//  - Token values are checked on the host (`check`) before the copy: the text tower checks GPU
//    tokens' shapes only, which needs no synchronisation.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "data/loader.h"

namespace duet::train {

class DeviceFeeder {
 public:
  // `check` runs on each batch on the host before its copy (may be empty).
  DeviceFeeder(data::Loader& loader, const torch::Device& device, int64_t micro_batches,
               std::function<void(const data::Batch&)> check);
  ~DeviceFeeder();
  DeviceFeeder(const DeviceFeeder&) = delete;
  DeviceFeeder& operator=(const DeviceFeeder&) = delete;

  // The next step's micro-batches on the device, ready for the current stream.
  std::vector<data::Batch> take();

  // Draws the following step's batches and starts their copies to the device; call once the
  // current step's work is queued. A no-op when they are already prepared.
  void prepare_next();

  // Seconds spent blocked on the loader since the last call (the step's data wait).
  double take_wait_seconds();

  // The loader position and epoch after the batches handed out so far.
  std::string loader_state() const;
  int64_t epoch() const;

 private:
  struct Prepared;
  std::unique_ptr<Prepared> draw();

  data::Loader& loader_;
  torch::Device device_;
  int64_t micro_batches_;
  std::function<void(const data::Batch&)> check_;
  std::unique_ptr<Prepared> next_;
  std::string consumed_state_;  // loader position after the batches handed out
  int64_t consumed_epoch_ = 0;
  double wait_seconds_ = 0.0;
  struct CopyStream;
  std::unique_ptr<CopyStream> copy_stream_;  // GPU only
};

}  // namespace duet::train
