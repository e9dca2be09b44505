#pragma once
// The trainer's entry to the losses: one batch of embeddings as a rank sees it (its own rows
// and the gathered global batch), the learnable temperature and bias, and the loss config,
// which picks CLIP's InfoNCE or SigLIP's sigmoid loss and the implementation
// (losses/implementation.h). Distributed training fills ContrastiveBatch with all-gathered
// (gather-with-grad) embeddings and offset = this rank's first global row; one process uses
// ContrastiveBatch::single_process, which says so explicitly (one_process): the form is the
// caller's statement, never inferred from which tensors were passed.
#include <torch/types.h>

#include "config/config.h"

namespace duet::losses {

struct ContrastiveBatch {
  torch::Tensor image_local;  // [n, D] this rank's image embeddings (L2-normalised)
  torch::Tensor text_local;   // [n, D] this rank's text embeddings, row i pairs with image row i
  torch::Tensor image_all;    // [M, D] all ranks' image embeddings (image_local in one process)
  torch::Tensor text_all;     // [M, D] all ranks' text embeddings (text_local in one process)
  int64_t offset = 0;         // row of image_local[0] in image_all: positives sit at offset + i
  bool one_process = false;   // the local rows are the whole batch; *_all are not read

  // One process: the local rows are the whole batch (image, text [N, D]).
  static ContrastiveBatch single_process(const torch::Tensor& image, const torch::Tensor& text);
};

// config.type 'clip': InfoNCE (logit_bias must be undefined); 'siglip': the sigmoid loss of
// image_local against text_all (image_all and text_local are not used), with logit_bias.
// logit_scale and logit_bias are 0-dim; logit_scale holds log t. Returns a 0-dim loss.
torch::Tensor contrastive_loss(const ContrastiveBatch& batch, const torch::Tensor& logit_scale,
                               const torch::Tensor& logit_bias, const config::LossConfig& config);

}  // namespace duet::losses
