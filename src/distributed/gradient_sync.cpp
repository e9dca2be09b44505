#include "distributed/gradient_sync.h"

#include <torch/torch.h>

#include <algorithm>

#include "common/error.h"

namespace duet::distributed {
namespace {

// Consecutive runs of tensors with one dtype and device, each at most `limit` bytes (or one
// tensor when it alone is larger).
std::vector<std::vector<size_t>> plan_buckets(const std::vector<torch::Tensor>& tensors,
                                              int64_t bucket_mb) {
  DUET_CHECK(bucket_mb > 0, "distributed.bucket_mb must be positive, got {}", bucket_mb);
  const int64_t limit = bucket_mb * 1024 * 1024;
  std::vector<std::vector<size_t>> buckets;
  int64_t bytes = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const torch::Tensor& t = tensors[i];
    const int64_t size = t.numel() * static_cast<int64_t>(t.element_size());
    const bool fits = !buckets.empty() && bytes + size <= limit &&
                      tensors[buckets.back().front()].scalar_type() == t.scalar_type() &&
                      tensors[buckets.back().front()].device() == t.device();
    if (!fits) {
      buckets.emplace_back();
      bytes = 0;
    }
    buckets.back().push_back(i);
    bytes += size;
  }
  return buckets;
}

}  // namespace

GradientSync::GradientSync(Communicator& communicator, std::vector<torch::Tensor> parameters,
                           int64_t bucket_mb)
    : communicator_(communicator), parameters_(std::move(parameters)) {
  for (auto& members : plan_buckets(parameters_, bucket_mb)) {
    int64_t numel = 0;
    for (size_t i : members) {
      numel += parameters_[i].numel();
    }
    const torch::Tensor& first = parameters_[members.front()];
    Bucket bucket;
    bucket.flat = torch::empty({numel + static_cast<int64_t>(members.size())}, first.options());
    bucket.members = std::move(members);
    buckets_.push_back(std::move(bucket));
  }
}

void GradientSync::average_gradients() {
  if (communicator_.world_size() == 1) {
    return;
  }
  torch::NoGradGuard no_grad;
  const double scale = 1.0 / communicator_.world_size();
  for (Bucket& bucket : buckets_) {
    const int64_t count = static_cast<int64_t>(bucket.members.size());
    std::vector<double> has_grad(static_cast<size_t>(count), 0.0);
    bool all_local = true;  // every member has a gradient here
    int64_t offset = 0;
    for (int64_t k = 0; k < count; ++k) {
      const torch::Tensor& p = parameters_[bucket.members[static_cast<size_t>(k)]];
      torch::Tensor slot = bucket.flat.narrow(0, offset, p.numel());
      if (p.grad().defined()) {
        slot.copy_(p.grad().reshape({-1}));
        has_grad[static_cast<size_t>(k)] = 1.0;
      } else {
        slot.zero_();
        all_local = false;
      }
      offset += p.numel();
    }
    torch::Tensor flags = bucket.flat.narrow(0, offset, count);
    if (all_local) {
      flags.fill_(1.0);  // on the device: no host-to-device copy
    } else {
      flags.copy_(torch::tensor(has_grad, torch::kDouble));
    }
    communicator_.all_reduce_sum(bucket.flat);
    // Which parameters had a gradient on some rank: known without asking when this rank has all
    // of them; otherwise one device-to-host copy of the flags.
    std::vector<double> any(static_cast<size_t>(count), 1.0);
    if (!all_local) {
      const torch::Tensor any_grad = flags.to(torch::kCPU, torch::kDouble);
      std::copy(any_grad.data_ptr<double>(), any_grad.data_ptr<double>() + count, any.begin());
    }
    offset = 0;
    for (int64_t k = 0; k < count; ++k) {
      torch::Tensor p = parameters_[bucket.members[static_cast<size_t>(k)]];
      const torch::Tensor slot = bucket.flat.narrow(0, offset, p.numel()).view(p.sizes());
      offset += p.numel();
      if (any[static_cast<size_t>(k)] == 0.0) {
        continue;  // no rank had a gradient
      }
      if (p.grad().defined()) {
        p.mutable_grad().copy_(slot).mul_(scale);
      } else {
        p.mutable_grad() = slot.mul(scale);
      }
    }
  }
}

void broadcast_parameters(Communicator& communicator, const std::vector<torch::Tensor>& tensors,
                          int64_t bucket_mb) {
  if (communicator.world_size() == 1) {
    return;
  }
  torch::NoGradGuard no_grad;
  for (const auto& members : plan_buckets(tensors, bucket_mb)) {
    std::vector<torch::Tensor> flat_parts;
    for (size_t i : members) {
      flat_parts.push_back(tensors[i].reshape({-1}));
    }
    torch::Tensor flat = torch::cat(flat_parts);
    communicator.broadcast(flat, 0);
    int64_t offset = 0;
    for (size_t i : members) {
      torch::Tensor t = tensors[i];
      t.copy_(flat.narrow(0, offset, t.numel()).view(t.sizes()));
      offset += t.numel();
    }
  }
}

}  // namespace duet::distributed
