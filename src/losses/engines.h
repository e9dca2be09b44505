#pragma once
// The one contract every fast loss implementation (an "engine") follows, so that one autograd
// Function per loss (infonce.cpp, siglip.cpp) serves them all:
//   forward:  the loss, plus the O(n + M) statistics backward needs (InfoNCE: two log-sum-exp
//             vectors; SigLIP: nothing) — never the n×M logits;
//   backward: recomputes what it needs from the inputs and those statistics, and returns the
//             gradients asked for (wanted), each scaled by the upstream gradient grad_output.
// Engines: tiled (infonce_tiled.cpp, siglip_tiled.cpp: ATen ops over [tile, tile] blocks, any
// device) and fused (fused.cpp: the CUDA kernels of kernels/, builds with DUET_CUDA only).
// Nothing here reads a tensor's value on the host: t = exp(logit_scale), the bias and
// grad_output stay device tensors, so an engine on CUDA never synchronises.
#include <cstdint>
#include <optional>

#include <torch/types.h>

namespace torch::autograd {
struct Node;
}

namespace duet::losses::detail {

// InfoNCE's operands. One process: x_local and y_local are the whole batch [N, D]; x_all and
// y_all are not read (empty) and offset is 0. Gathered: [n, D] local rows, [M, D] all rows.
struct InfoNCEInputs {
  torch::Tensor x_local, y_local, x_all, y_all;
  int64_t offset = 0;
  bool one_process = false;
  torch::Tensor logit_scale;  // 0-dim, log t
};

struct InfoNCEForward {
  torch::Tensor loss;   // 0-dim: float64 for float64 inputs, float32 otherwise
  torch::Tensor lse_a;  // [n] LSE_j t·x_i·Y_j (one process: the rows of S = t·X·Yᵀ)
  torch::Tensor lse_b;  // [n] LSE_j t·y_i·X_j (one process: the columns of S)
};

struct InfoNCEWanted {
  bool x_local = false, y_local = false, x_all = false, y_all = false, logit_scale = false;
};

// Undefined where not wanted. One process: x_local and y_local are the whole gradients.
struct InfoNCEGrads {
  torch::Tensor x_local, y_local, x_all, y_all, logit_scale;
};

// SigLIP's operands: x [n, D] (images, this rank's rows) against y [M, D] (all texts; one
// process: the batch's texts, n = M), positives at (i, offset + i).
struct SigLipInputs {
  torch::Tensor x_local, y_all;
  int64_t offset = 0;
  bool one_process = false;
  torch::Tensor logit_scale;  // 0-dim
  torch::Tensor logit_bias;   // 0-dim
};

struct SigLipWanted {
  bool x_local = false, y_all = false, logit_scale = false, logit_bias = false;
};

struct SigLipGrads {
  torch::Tensor x_local, y_all, logit_scale, logit_bias;
};

InfoNCEForward infonce_forward_tiled(const InfoNCEInputs& in, int64_t tile_size);
InfoNCEGrads infonce_backward_tiled(const InfoNCEInputs& in, const InfoNCEForward& saved,
                                    const torch::Tensor& grad_output, InfoNCEWanted wanted,
                                    int64_t tile_size);
torch::Tensor siglip_forward_tiled(const SigLipInputs& in, int64_t tile_size);
SigLipGrads siglip_backward_tiled(const SigLipInputs& in, const torch::Tensor& grad_output,
                                  SigLipWanted wanted, int64_t tile_size);

// The path recorded in `node` when it is the autograd node of the InfoNCE (SigLIP) function,
// else nullopt (implementation.h: path_of).
std::optional<int64_t> infonce_node_path(const torch::autograd::Node* node);
std::optional<int64_t> siglip_node_path(const torch::autograd::Node* node);

// The fused engine. In builds without the kernels these throw (select_implementation never
// picks them there).
InfoNCEForward infonce_forward_fused(const InfoNCEInputs& in);
InfoNCEGrads infonce_backward_fused(const InfoNCEInputs& in, const InfoNCEForward& saved,
                                    const torch::Tensor& grad_output, InfoNCEWanted wanted);
torch::Tensor siglip_forward_fused(const SigLipInputs& in);
SigLipGrads siglip_backward_fused(const SigLipInputs& in, const torch::Tensor& grad_output,
                                  SigLipWanted wanted);

}  // namespace duet::losses::detail
