#pragma once
// AdamW with OpenCLIP's two parameter groups: weight decay on matrices, none on gains
// (LayerNorm weights, LayerScale), biases, embeddings (token, position, class, probe) and the
// logit scale/bias. The learning rate is set per step from the schedule.
//
// The update is PyTorch's fused AdamW (at::_fused_adamw_: one multi-tensor kernel per group on
// a GPU, a vectorised loop on the CPU), the same arithmetic as torch.optim.AdamW. A step can be
// skipped on the device: `step(skip)` with a nonzero 0-dim `skip` leaves parameters, moments
// and step counts unchanged without the host ever reading `skip` - which is how the trainer
// drops a non-finite step without synchronising with the GPU.
//
// Invariants: parameters that do not require grad (a tower frozen by model.lock_image) are left
// out and never change; a parameter without a gradient in a step is not updated in that step
// (as in PyTorch); state (moments, step count) lives on the parameter's device.
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "config/config.h"
#include "train/checkpoint.h"

namespace duet::train {

// True for parameters that get no weight decay.
bool exempt_from_weight_decay(const std::string& name, const torch::Tensor& parameter);

class AdamW final : public CheckpointedOptimizer {
 public:
  struct Group {
    std::vector<torch::Tensor> parameters;
    double weight_decay = 0.0;
  };

  AdamW(std::vector<Group> groups, const config::OptimConfig& optim);

  void set_lr(double lr) { lr_ = lr; }

  // Drops every gradient (set to none, as PyTorch's zero_grad does by default).
  void zero_grad();

  // One AdamW update of every parameter that has a gradient. `skip`, when defined, is a 0-dim
  // tensor on the parameters' device: nonzero makes the whole step a no-op.
  void step(const torch::Tensor& skip = {});

  const std::vector<Group>& groups() const { return groups_; }

  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive, const torch::Device& device) override;

 private:
  struct State {
    torch::Tensor exp_avg;     // first moment, like the parameter
    torch::Tensor exp_avg_sq;  // second moment, like the parameter
    torch::Tensor step;        // 0-dim float32 on the parameter's device: updates so far
  };
  State& state_of(size_t group, size_t index);

  std::vector<Group> groups_;
  std::vector<std::vector<State>> state_;  // [group][parameter]; undefined until first updated
  double lr_;
  double beta1_;
  double beta2_;
  double eps_;
};

// Group 0 decays, group 1 does not; parameters that do not require grad are left out.
std::unique_ptr<AdamW> make_adamw(const torch::nn::Module& model, const config::OptimConfig& optim);

}  // namespace duet::train
