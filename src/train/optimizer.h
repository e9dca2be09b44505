#pragma once
// AdamW with OpenCLIP's two parameter groups: weight decay on matrices, none on gains
// (LayerNorm weights, LayerScale), biases, embeddings (token, position, class, probe) and the
// logit scale/bias. The learning rate is set per step from the schedule.
#include <memory>
#include <string>

#include <torch/torch.h>

#include "config/config.h"

namespace duet::train {

// True for parameters that get no weight decay.
bool exempt_from_weight_decay(const std::string& name, const torch::Tensor& parameter);

// Group 0 decays, group 1 does not; parameters that do not require grad (a tower frozen by
// model.lock_image) are left out, so they get no optimiser state and never change.
std::unique_ptr<torch::optim::AdamW> make_adamw(const torch::nn::Module& model,
                                                const config::OptimConfig& optim);

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);

}  // namespace duet::train
