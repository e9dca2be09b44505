#pragma once
// Keeping the model replicas identical: parameters broadcast from rank 0 at start, parameter
// gradients averaged over ranks after every backward. Both move flat buckets of at most
// distributed.bucket_mb, one collective per bucket, instead of one per tensor (a CLIP model has
// hundreds of small tensors; per-tensor latency would dominate).
#include <cstdint>
#include <vector>

#include <torch/types.h>

#include "distributed/communicator.h"

namespace duet::distributed {

class GradientSync {
 public:
  // `parameters` in the same order on every rank (model->parameters() is); buckets group
  // consecutive parameters of one dtype and device up to bucket_mb MiB (a larger parameter gets
  // a bucket of its own).
  GradientSync(Communicator& communicator, std::vector<torch::Tensor> parameters,
               int64_t bucket_mb);

  // After backward, before clipping: every parameter's .grad becomes the mean over ranks. A rank
  // whose parameter has no gradient contributes zeros; a gradient undefined on every rank stays
  // undefined (the optimiser then skips that parameter, as in one process). No-op for one rank.
  // Whether another rank had a gradient is read on the host (one read per bucket) only for a
  // bucket in which this rank lacks some gradient; when every parameter has one (training with
  // trainable parameters only), nothing is read and the GPU is never waited for.
  void average_gradients();

  int64_t bucket_count() const { return static_cast<int64_t>(buckets_.size()); }

 private:
  struct Bucket {
    std::vector<size_t> members;  // indices into parameters_
    torch::Tensor flat;           // [Σ numel + members], trailing slots: "has a gradient" flags
  };

  Communicator& communicator_;
  std::vector<torch::Tensor> parameters_;
  std::vector<Bucket> buckets_;
};

// Copies rank 0's values into `tensors` on every rank (parameters and buffers, in the same
// order everywhere), in flat buckets of at most bucket_mb MiB. No-op for one rank.
void broadcast_parameters(Communicator& communicator, const std::vector<torch::Tensor>& tensors,
                          int64_t bucket_mb);

}  // namespace duet::distributed
