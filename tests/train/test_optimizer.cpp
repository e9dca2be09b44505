// duet's AdamW (train/optimizer.h) against LibTorch's torch::optim::AdamW, in float64: the
// same parameters after several steps with and without weight decay; a skipped step (a
// nonzero `skip` tensor, never read on the host) changes nothing; saved state resumes exactly.
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include "train/optimizer.h"

namespace {

struct Problem {
  std::vector<torch::Tensor> decay, no_decay;
  std::vector<torch::Tensor> all() const {
    auto out = decay;
    out.insert(out.end(), no_decay.begin(), no_decay.end());
    return out;
  }
};

Problem make_problem(uint64_t seed) {
  torch::manual_seed(seed);
  auto leaf = [](std::vector<int64_t> shape) {
    return torch::randn(shape, torch::kDouble).requires_grad_();
  };
  return {{leaf({5, 3}), leaf({7, 2})}, {leaf({3}), leaf({})}};
}

// A loss whose gradients differ per step.
void backward(const Problem& p, int step) {
  torch::Tensor loss = torch::zeros({}, torch::kDouble);
  int k = 0;
  for (const auto& t : p.all()) {
    loss = loss + ((t * (step + 1 + k)).sin() * t).sum();
    ++k;
  }
  loss.backward();
}

duet::config::OptimConfig optim() {
  duet::config::OptimConfig o;
  o.lr = 0.01;
  o.weight_decay = 0.2;
  o.beta1 = 0.9;
  o.beta2 = 0.98;
  o.eps = 1e-6;
  return o;
}

duet::train::AdamW duet_adamw(const Problem& p) {
  return duet::train::AdamW({{p.decay, optim().weight_decay}, {p.no_decay, 0.0}}, optim());
}

}  // namespace

TEST_CASE("AdamW matches LibTorch's AdamW step for step", "[optimizer]") {
  const Problem ours = make_problem(1);
  const Problem theirs = make_problem(1);
  auto mine = duet_adamw(ours);
  auto options = [](double wd) {
    return std::make_unique<torch::optim::AdamWOptions>(
        torch::optim::AdamWOptions(optim().lr).betas({0.9, 0.98}).eps(1e-6).weight_decay(wd));
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(theirs.decay, options(0.2));
  groups.emplace_back(theirs.no_decay, options(0.0));
  torch::optim::AdamW reference(groups, torch::optim::AdamWOptions(optim().lr));
  for (int step = 0; step < 6; ++step) {
    const double lr = 0.01 * (step + 1) / 6.0;  // a schedule, as the trainer sets it
    mine.set_lr(lr);
    for (auto& group : reference.param_groups()) {
      static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    }
    mine.zero_grad();
    reference.zero_grad();
    backward(ours, step);
    backward(theirs, step);
    mine.step();
    reference.step();
  }
  const auto a = ours.all();
  const auto b = theirs.all();
  for (size_t i = 0; i < a.size(); ++i) {
    INFO("parameter " << i);
    CHECK(torch::allclose(a[i], b[i], 1e-12, 1e-12));
  }
}

TEST_CASE("a skipped AdamW step leaves parameters, moments and step counts unchanged",
          "[optimizer]") {
  const Problem p = make_problem(2);
  const Problem control = make_problem(2);
  auto mine = duet_adamw(p);
  auto plain = duet_adamw(control);
  backward(p, 0);
  backward(control, 0);
  mine.step(torch::tensor(false));
  plain.step();
  // A step with a non-finite gradient, skipped on the device.
  mine.zero_grad();
  backward(p, 1);
  p.decay[0].mutable_grad().fill_(std::numeric_limits<double>::quiet_NaN());
  std::vector<torch::Tensor> before;
  for (const auto& t : p.all()) {
    before.push_back(t.detach().clone());
  }
  mine.step(torch::tensor(true));
  for (size_t i = 0; i < before.size(); ++i) {
    CHECK(p.all()[i].equal(before[i]));
  }
  // The next applied step is the second one (bias corrections of step 2), as for the control.
  mine.zero_grad();
  plain.zero_grad();
  backward(p, 2);
  backward(control, 2);
  mine.step(torch::tensor(false));
  plain.step();
  for (size_t i = 0; i < before.size(); ++i) {
    CHECK(torch::allclose(p.all()[i], control.all()[i], 1e-12, 1e-12));
  }
}

TEST_CASE("AdamW state saved and loaded continues exactly", "[optimizer]") {
  const Problem whole = make_problem(3);
  const Problem parts = make_problem(3);
  auto a = duet_adamw(whole);
  auto b = duet_adamw(parts);
  for (int step = 0; step < 3; ++step) {
    a.zero_grad();
    b.zero_grad();
    backward(whole, step);
    backward(parts, step);
    a.step();
    b.step();
  }
  torch::serialize::OutputArchive out;
  b.save(out);
  std::ostringstream bytes;
  out.save_to(bytes);
  auto c = duet_adamw(parts);  // a fresh optimiser over the same parameters
  std::istringstream in_bytes(bytes.str());
  torch::serialize::InputArchive in;
  in.load_from(in_bytes);
  c.load(in, torch::kCPU);
  for (int step = 3; step < 5; ++step) {
    a.zero_grad();
    c.zero_grad();
    backward(whole, step);
    backward(parts, step);
    a.step();
    c.step();
  }
  for (size_t i = 0; i < whole.all().size(); ++i) {
    CHECK(whole.all()[i].equal(parts.all()[i]));
  }
}
