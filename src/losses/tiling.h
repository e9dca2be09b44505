#pragma once
// Helpers every tiled loss shares: cutting a dimension into tiles, and running one task per
// column tile on ATen's intra-op threads.
//
// Parallel scheme (deterministic): the row tiles are walked in order on the calling thread; for
// each, the column tiles run in parallel, each on exactly one thread, one single-threaded
// matmul per block. Whatever a column tile owns (its column statistics, its rows of dY) is
// updated in place; what all column tiles share (the row statistics, dX of the row tile, scalar
// sums) goes to a per-column-tile slot and is combined in column order afterwards. Results
// therefore do not depend on scheduling, and only through ATen's reductions on the thread count.
#include <algorithm>
#include <vector>

#include <ATen/Parallel.h>
#include <c10/core/DispatchKeySet.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/types.h>

namespace duet::losses::detail {

// One tile of a dimension: indices [begin, begin + size).
struct TileRange {
  int64_t begin;
  int64_t size;
};

// The tiles of [0, extent), in order; the last one may be shorter.
inline std::vector<TileRange> tiles(int64_t extent, int64_t tile_size) {
  std::vector<TileRange> out;
  for (int64_t begin = 0; begin < extent; begin += tile_size) {
    out.push_back({begin, std::min(tile_size, extent - begin)});
  }
  return out;
}

// Plain arithmetic on this thread: no autograd recording and no autocast, whatever the
// caller's (thread-local) modes are. ATen's worker threads do not inherit them, so the calling
// thread must match the workers.
struct PlainComputeGuard {
  at::NoGradGuard no_grad;
  c10::impl::ExcludeDispatchKeyGuard no_autocast{c10::autocast_dispatch_keyset};
};

// Work below which a thread is not worth waking: ~2^20 multiply-adds, some 50 µs.
constexpr int64_t kMinWorkPerTask = int64_t{1} << 20;

// Calls body(k) for k in [0, count), each k on exactly one of ATen's intra-op threads.
// work_per_tile (e.g. tile·tile·D for a block matmul) sets the grain so that small problems
// (tests, tiny batches) stay on the calling thread instead of paying for thread wake-ups.
// Off the CPU (a CUDA device) the tiles run one after another on the calling thread: the device
// parallelises each block's operations, and its stream orders them.
template <class Body>
void parallel_over_tiles(const torch::Device& device, int64_t count, int64_t work_per_tile,
                         const Body& body) {
  if (!device.is_cpu()) {
    for (int64_t k = 0; k < count; ++k) {
      body(k);
    }
    return;
  }
  const int64_t grain = std::max<int64_t>(1, kMinWorkPerTask / std::max<int64_t>(1, work_per_tile));
  at::parallel_for(0, count, grain, [&](int64_t begin, int64_t end) {
    PlainComputeGuard guard;
    for (int64_t k = begin; k < end; ++k) {
      body(k);
    }
  });
}

}  // namespace duet::losses::detail
