// AdamW over at::_fused_adamw_ (see optimizer.h). The fused op updates parameters, moments and
// step counts of many tensors at once; it reads the step counts itself (on the device), so
// nothing here reads a tensor on the host. Tensors reach it grouped by device and dtype, as
// torch.optim.AdamW(fused=True) groups them.
#include "train/optimizer.h"

#include <map>
#include <tuple>

#include "common/error.h"
#include "common/logging.h"

namespace duet::train {

bool exempt_from_weight_decay(const std::string& name, const torch::Tensor& parameter) {
  auto has = [&name](const char* part) { return name.find(part) != std::string::npos; };
  return parameter.dim() < 2 || has("embedding") || has("probe") || has("logit_scale") ||
         has("logit_bias") || has("bias");
}

AdamW::AdamW(std::vector<Group> groups, const config::OptimConfig& optim)
    : groups_(std::move(groups)),
      lr_(optim.lr),
      beta1_(optim.beta1),
      beta2_(optim.beta2),
      eps_(optim.eps) {
  for (const Group& group : groups_) {
    state_.emplace_back(group.parameters.size());
  }
}

void AdamW::zero_grad() {
  for (Group& group : groups_) {
    for (torch::Tensor& p : group.parameters) {
      p.mutable_grad().reset();
    }
  }
}

AdamW::State& AdamW::state_of(size_t group, size_t index) {
  State& s = state_[group][index];
  if (!s.step.defined()) {
    const torch::Tensor& p = groups_[group].parameters[index];
    s.exp_avg = torch::zeros_like(p, torch::MemoryFormat::Preserve);
    s.exp_avg_sq = torch::zeros_like(p, torch::MemoryFormat::Preserve);
    s.step = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat32).device(p.device()));
  }
  return s;
}

void AdamW::step(const torch::Tensor& skip) {
  torch::NoGradGuard no_grad;
  // found_inf (1: the fused op skips the step) and 1 - found_inf (what the step counts, which it
  // does not touch, advance by), made once per device for every group.
  std::map<std::pair<int, int>, std::pair<torch::Tensor, torch::Tensor>> skip_on;
  auto skip_for = [&](const torch::Device& device) -> const std::pair<torch::Tensor, torch::Tensor>& {
    const std::pair<int, int> key{static_cast<int>(device.type()), device.index()};
    auto it = skip_on.find(key);
    if (it == skip_on.end()) {
      const torch::Tensor found_inf = skip.to(device, torch::kFloat32).ne(0).to(torch::kFloat32);
      it = skip_on.emplace(key, std::make_pair(found_inf, torch::rsub(found_inf, 1))).first;
    }
    return it->second;
  };
  for (size_t g = 0; g < groups_.size(); ++g) {
    // The tensors of one fused call share a device and a dtype.
    struct Lists {
      std::vector<torch::Tensor> params, grads, exp_avgs, exp_avg_sqs, steps;
    };
    std::map<std::tuple<int, int, int>, Lists> by_kind;
    for (size_t i = 0; i < groups_[g].parameters.size(); ++i) {
      const torch::Tensor& p = groups_[g].parameters[i];
      if (!p.grad().defined()) {
        continue;
      }
      State& s = state_of(g, i);
      Lists& l = by_kind[{static_cast<int>(p.device().type()), p.device().index(),
                          static_cast<int>(p.scalar_type())}];
      l.params.push_back(p);
      l.grads.push_back(p.grad());
      l.exp_avgs.push_back(s.exp_avg);
      l.exp_avg_sqs.push_back(s.exp_avg_sq);
      l.steps.push_back(s.step);
    }
    for (auto& [kind, l] : by_kind) {
      std::optional<torch::Tensor> found_inf;
      if (skip.defined()) {
        const auto& [inf, applied] = skip_for(l.params.front().device());
        found_inf = inf;
        at::_foreach_add_(l.steps, applied);
      } else {
        at::_foreach_add_(l.steps, 1);
      }
      at::_fused_adamw_(l.params, l.grads, l.exp_avgs, l.exp_avg_sqs, /*max_exp_avg_sqs=*/{},
                        l.steps, lr_, beta1_, beta2_, groups_[g].weight_decay, eps_,
                        /*amsgrad=*/false, /*maximize=*/false, /*grad_scale=*/std::nullopt,
                        found_inf);
    }
  }
}

void AdamW::save(torch::serialize::OutputArchive& archive) const {
  for (size_t g = 0; g < groups_.size(); ++g) {
    archive.write(fmt::format("group{}.size", g),
                  torch::tensor(static_cast<int64_t>(groups_[g].parameters.size())));
    for (size_t i = 0; i < groups_[g].parameters.size(); ++i) {
      const State& s = state_[g][i];
      if (!s.step.defined()) {
        continue;  // never updated: no state yet
      }
      const std::string prefix = fmt::format("group{}.param{}.", g, i);
      archive.write(prefix + "exp_avg", s.exp_avg);
      archive.write(prefix + "exp_avg_sq", s.exp_avg_sq);
      archive.write(prefix + "step", s.step);
    }
  }
}

void AdamW::load(torch::serialize::InputArchive& archive, const torch::Device& device) {
  std::vector<std::vector<State>> loaded(groups_.size());
  for (size_t g = 0; g < groups_.size(); ++g) {
    const auto& params = groups_[g].parameters;
    torch::Tensor size;
    if (!archive.try_read(fmt::format("group{}.size", g), size)) {
      fail("optimiser state has no parameter group {} (written by another optimiser?)", g);
    }
    if (size.item<int64_t>() != static_cast<int64_t>(params.size())) {
      fail(
          "optimiser state has {} parameters in group {}, this model {} (was it trained with "
          "another model config or model.lock_image setting?)",
          size.item<int64_t>(), g, params.size());
    }
    loaded[g].resize(params.size());
    for (size_t i = 0; i < params.size(); ++i) {
      const std::string prefix = fmt::format("group{}.param{}.", g, i);
      State s;
      if (!archive.try_read(prefix + "step", s.step)) {
        continue;
      }
      archive.read(prefix + "exp_avg", s.exp_avg);
      archive.read(prefix + "exp_avg_sq", s.exp_avg_sq);
      if (s.exp_avg.sizes() != params[i].sizes() || s.exp_avg_sq.sizes() != params[i].sizes()) {
        fail("optimiser state of parameter {} of group {} does not have the parameter's shape", i,
             g);
      }
      s.exp_avg = s.exp_avg.to(device, params[i].scalar_type());
      s.exp_avg_sq = s.exp_avg_sq.to(device, params[i].scalar_type());
      s.step = s.step.to(device, torch::kFloat32);
      loaded[g][i] = std::move(s);
    }
  }
  state_ = std::move(loaded);
}

std::unique_ptr<AdamW> make_adamw(const torch::nn::Module& model,
                                  const config::OptimConfig& optim) {
  AdamW::Group decay{{}, optim.weight_decay};
  AdamW::Group no_decay{{}, 0.0};
  for (const auto& item : model.named_parameters(/*recurse=*/true)) {
    if (!item.value().requires_grad()) {
      continue;
    }
    (exempt_from_weight_decay(item.key(), item.value()) ? no_decay : decay)
        .parameters.push_back(item.value());
  }
  log::get("train")->debug("AdamW: {} tensors with weight decay, {} without",
                           decay.parameters.size(), no_decay.parameters.size());
  return std::make_unique<AdamW>(std::vector<AdamW::Group>{decay, no_decay}, optim);
}

}  // namespace duet::train
