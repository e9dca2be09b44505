#pragma once
// Argument checks shared by every loss implementation (apex style): each failure throws
// duet::Error with a message naming the argument and its shape, dtype and device, e.g.
//   infonce_loss: text_all must be [M, D] = [16, 64] like image_all, got [16, 32] float32 cpu
// Also the helper the implementations agree on (the compute dtype).
#include <string>

#include <torch/types.h>

#include "common/tensor_text.h"  // describe(): "[8, 64] float32 cpu", or "undefined"

namespace duet::losses {

// InfoNCE in the local-rows × gathered-columns form: image_local and text_local [n, D],
// image_all and text_all [M, D], 1 <= n, offset >= 0, offset + n <= M; one floating dtype and
// one device for the four; logit_scale a 0-dim floating tensor on the same device.
void check_infonce_inputs(const char* op, const torch::Tensor& image_local,
                          const torch::Tensor& text_local, const torch::Tensor& image_all,
                          const torch::Tensor& text_all, int64_t offset,
                          const torch::Tensor& logit_scale);

// SigLIP: x_local [n, D], y_all [M, D], offset as above; logit_scale and logit_bias 0-dim.
void check_siglip_inputs(const char* op, const torch::Tensor& x_local, const torch::Tensor& y_all,
                         int64_t offset, const torch::Tensor& logit_scale,
                         const torch::Tensor& logit_bias);

// The tiled implementations' loss.tile_size: >= 1.
void check_tile_size(const char* op, int64_t tile_size);

// The dtype the arithmetic runs in: float64 for float64 inputs, float32 otherwise (bfloat16 and
// float16 inputs are upcast, so their products and sums accumulate in float32).
torch::ScalarType compute_dtype(torch::ScalarType input);

}  // namespace duet::losses
