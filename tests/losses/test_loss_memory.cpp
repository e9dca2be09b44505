// Proves that the tiled losses never allocate the n×M logits: LibTorch's CPU allocator is
// wrapped by one that counts live bytes and their peak, and a forward + backward at
// N = M = 4096, D = 64, tile 256 must peak far below one [N, M] float32 matrix (64 MiB), while
// the reference, measured the same way, must reach it (so the counter does see such tensors).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

// LibTorch before Catch2: c10 defines a CHECK macro that Catch2's must replace.
#include <ATen/Parallel.h>
#include <c10/core/CPUAllocator.h>
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include "losses/infonce.h"
#include "losses/loss_oracle.h"
#include "losses/siglip.h"

namespace duet::losses {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;

// Forwards to LibTorch's CPU allocator and tracks the bytes it has handed out and not yet had
// back, and the peak of that since reset().
class CountingAllocator final : public c10::Allocator {
 public:
  explicit CountingAllocator(c10::Allocator* base) : base_(base) {}

  c10::DataPtr allocate(size_t bytes) override {
    c10::DataPtr inner = base_->allocate(bytes);
    void* data = inner.get();
    const c10::Device device = inner.device();
    auto* block = new Block{std::move(inner), bytes, this};
    const int64_t live = live_.fetch_add(static_cast<int64_t>(bytes)) + static_cast<int64_t>(bytes);
    int64_t peak = peak_.load();
    while (live > peak && !peak_.compare_exchange_weak(peak, live)) {
    }
    return {data, block, &Block::release, device};
  }

  void copy_data(void* dest, const void* src, std::size_t count) const override {
    std::memcpy(dest, src, count);
  }

  c10::Allocator* base() const { return base_; }
  void reset() { peak_.store(live_.load()); }
  // Peak live bytes since reset(), above what was live at reset().
  int64_t peak_since(int64_t baseline) const { return peak_.load() - baseline; }
  int64_t live() const { return live_.load(); }

 private:
  struct Block {
    c10::DataPtr inner;  // frees through the base allocator when the block is deleted
    size_t bytes;
    CountingAllocator* owner;
    static void release(void* context) {
      auto* block = static_cast<Block*>(context);
      block->owner->live_.fetch_sub(static_cast<int64_t>(block->bytes));
      delete block;
    }
  };

  c10::Allocator* base_;
  std::atomic<int64_t> live_{0};
  std::atomic<int64_t> peak_{0};
};

// Installs the counting allocator for its lifetime. The allocator itself is never destroyed:
// tensors it allocated may outlive the scope.
class CountingScope {
 public:
  CountingScope() {
    static CountingAllocator* counting = new CountingAllocator(c10::GetCPUAllocator());
    counting_ = counting;
    c10::SetCPUAllocator(counting_, /*priority=*/255);
    counting_->reset();
    baseline_ = counting_->live();
  }
  ~CountingScope() { c10::SetCPUAllocator(counting_->base(), /*priority=*/255); }
  CountingScope(const CountingScope&) = delete;
  CountingScope& operator=(const CountingScope&) = delete;

  double peak_mib() const { return static_cast<double>(counting_->peak_since(baseline_)) / kMiB; }

 private:
  CountingAllocator* counting_;
  int64_t baseline_ = 0;
};

struct Inputs {
  torch::Tensor image, text, scale, bias;
};

Inputs make_inputs(int64_t n, int64_t d) {
  torch::manual_seed(31);
  return {testing::random_embeddings(n, d, torch::kFloat32).requires_grad_(),
          testing::random_embeddings(n, d, torch::kFloat32).requires_grad_(),
          torch::tensor(std::log(1 / 0.07f)).requires_grad_(),
          torch::tensor(-10.0f).requires_grad_()};
}

// Peak extra MiB of one forward + backward of `loss_of`.
template <class F>
double peak_mib(Inputs& in, F loss_of) {
  for (torch::Tensor* t : {&in.image, &in.text, &in.scale, &in.bias}) {
    t->mutable_grad().reset();
  }
  CountingScope scope;
  loss_of(in).backward();
  return scope.peak_mib();
}

TEST_CASE("tiled losses never allocate the n×M logits", "[losses][memory]") {
  const int64_t n = 4096, d = 64, tile = 256;
  const double logits_mib = static_cast<double>(n * n * 4) / kMiB;  // one [N, N] float32: 64 MiB
  // What the tiled walks legitimately hold: about six [N, D]-sized buffers (t·x, the two
  // gradient accumulators, the per-column-tile partials of dX, the returned gradients; 1 MiB
  // each here) and, per working thread, a few [tile, tile] blocks (256 KiB each). With up to
  // 16 threads (there are 16 column tiles) that stays at or below 22 MiB, a third of one
  // logits matrix; on 2 threads it is 8 MiB.
  const int64_t threads = std::min<int64_t>(at::get_num_threads(), n / tile);
  const double budget_mib = 6.0 + 1.0 * static_cast<double>(threads);
  Inputs in = make_inputs(n, d);

  const double clip_tiled = peak_mib(
      in, [&](const Inputs& x) { return infonce_loss_tiled(x.image, x.text, x.scale, tile); });
  const double clip_reference = peak_mib(
      in, [&](const Inputs& x) { return infonce_loss_reference(x.image, x.text, x.scale); });
  // The general (distributed) path: 2048 local rows against the 4096 gathered ones.
  const double clip_local_tiled = peak_mib(in, [&](const Inputs& x) {
    return infonce_loss_tiled(x.image.narrow(0, 1024, 2048), x.text.narrow(0, 1024, 2048), x.image,
                              x.text, 1024, x.scale, tile);
  });
  const double siglip_tiled = peak_mib(in, [&](const Inputs& x) {
    return siglip_loss_tiled(x.image, x.text, x.scale, x.bias, tile);
  });
  const double siglip_reference = peak_mib(in, [&](const Inputs& x) {
    return siglip_loss_reference(x.image, x.text, 0, x.scale, x.bias);
  });

  INFO("peak extra MiB (one [N, N] float32 = "
       << logits_mib << ", tiled budget " << budget_mib << "): clip tiled " << clip_tiled
       << ", clip reference " << clip_reference << ", clip local tiled " << clip_local_tiled
       << ", siglip tiled " << siglip_tiled << ", siglip reference " << siglip_reference);
  CHECK(clip_reference >= logits_mib);
  CHECK(siglip_reference >= logits_mib);
  CHECK(clip_tiled <= budget_mib);
  CHECK(clip_local_tiled <= budget_mib);
  CHECK(siglip_tiled <= budget_mib);
}

}  // namespace
}  // namespace duet::losses
