// The host execution layer's runtime: indices, barriers, shared memory, divergence, deadlock and
// error handling, launch validation, counters. Kernels here are host-only (they test the layer).
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "kernel_error.h"
#include "kernels/device.h"
#include "kernels/intrinsics.h"

namespace dk = duet::kernels;
namespace host = duet::kernels::host;
namespace dt = duet::kernels::testing;
using Catch::Matchers::Contains;

namespace {

DUET_KERNEL void record_indices(unsigned* out) {
  const unsigned block = (blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
  const unsigned thread = (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
  const unsigned base = 10 * (block * blockDim.x * blockDim.y * blockDim.z + thread);
  const unsigned values[10] = {threadIdx.x, threadIdx.y, threadIdx.z, blockIdx.x, blockIdx.y,
                               blockIdx.z,  blockDim.x,  blockDim.y,  gridDim.x,  gridDim.z};
  for (unsigned i = 0; i < 10; ++i) {
    out[base + i] = values[i];
  }
  dk::block_sync();
  // After a barrier every thread must still see its own indices.
  out[base] += threadIdx.x == values[0] && threadIdx.y == values[1] ? 1000 : 0;
}

TEST_CASE("threadIdx, blockIdx, blockDim and gridDim show the running thread", "[kernels]") {
  const dim3 grid(3, 2, 2);
  const dim3 block(4, 3, 2);
  std::vector<unsigned> out(10 * 12 * 24);
  DUET_LAUNCH(record_indices, grid, block, 0, nullptr, out.data());
  for (unsigned bz = 0; bz < 2; ++bz) {
    for (unsigned by = 0; by < 2; ++by) {
      for (unsigned bx = 0; bx < 3; ++bx) {
        for (unsigned tz = 0; tz < 2; ++tz) {
          for (unsigned ty = 0; ty < 3; ++ty) {
            for (unsigned tx = 0; tx < 4; ++tx) {
              const unsigned b = (bz * 2 + by) * 3 + bx;
              const unsigned t = (tz * 3 + ty) * 4 + tx;
              const unsigned* v = &out[10 * (b * 24 + t)];
              INFO("block " << bx << "," << by << "," << bz << " thread " << tx << "," << ty << ","
                            << tz);
              CHECK(v[0] == tx + 1000);
              CHECK(v[1] == ty);
              CHECK(v[2] == tz);
              CHECK(v[3] == bx);
              CHECK(v[4] == by);
              CHECK(v[5] == bz);
              CHECK(v[6] == 4);
              CHECK(v[7] == 3);
              CHECK(v[8] == 3);
              CHECK(v[9] == 2);
            }
          }
        }
      }
    }
  }
}

// out[t] = shared[(t + shift) % n] after every thread stored its own rank, `rounds` times.
DUET_KERNEL void rotate_through_shared(int* out, int rounds) {
  DUET_DYNAMIC_SHARED(int, values);
  const int n = static_cast<int>(blockDim.x);
  const int t = static_cast<int>(threadIdx.x);
  int mine = t;
  for (int round = 0; round < rounds; ++round) {
    dk::smem_store(&values[t], mine);
    dk::block_sync();
    mine = dk::smem_load(&values[(t + 1) % n]);
    dk::block_sync();
  }
  out[blockIdx.x * n + t] = mine;
}

TEST_CASE("block_sync orders every thread's shared-memory phase", "[kernels]") {
  const int threads = 96;
  const int rounds = 5;
  std::vector<int> out(2 * threads);
  host::reset_counters();
  DUET_LAUNCH(rotate_through_shared, dim3(2), dim3(threads), threads * sizeof(int), nullptr,
              out.data(), rounds);
  for (int b = 0; b < 2; ++b) {
    for (int t = 0; t < threads; ++t) {
      CHECK(out[b * threads + t] == (t + rounds) % threads);
    }
  }
  const host::Counters c = host::counters();
  CHECK(c.launches == 1);
  CHECK(c.blocks == 2);
  CHECK(c.block_barriers == 2 * 2 * rounds);
  // Every thread is resumed once to start and once after each barrier it waited at; the last to
  // arrive at a barrier carries on without a switch. Each resume is two switches (in and out).
  CHECK(c.fiber_switches == 2u * 2 * (threads + 2 * rounds * (threads - 1)));
}

TEST_CASE("a block of 1024 threads, the most CUDA allows", "[kernels]") {
  std::vector<int> out(1024);
  DUET_LAUNCH(rotate_through_shared, dim3(1), dim3(1024), 1024 * sizeof(int), nullptr, out.data(),
              3);
  for (int t = 0; t < 1024; ++t) {
    CHECK(out[static_cast<std::size_t>(t)] == (t + 3) % 1024);
  }
}

DUET_KERNEL void static_shared_per_block(unsigned* out) {
  __shared__ __align__(16) unsigned owner[4];
  if (threadIdx.x == 0) {
    dk::smem_store(&owner[blockIdx.x % 4], blockIdx.x + 100);
  }
  dk::block_sync();
  out[blockIdx.x * blockDim.x + threadIdx.x] = dk::smem_load(&owner[blockIdx.x % 4]);
}

TEST_CASE("static __shared__ memory is one instance per running block, not poisoned", "[kernels]") {
  std::vector<unsigned> out(6 * 64);
  DUET_LAUNCH(static_shared_per_block, dim3(6), dim3(64), 0, nullptr, out.data());
  for (unsigned b = 0; b < 6; ++b) {
    for (unsigned t = 0; t < 64; ++t) {
      CHECK(out[b * 64 + t] == b + 100);
    }
  }
}

// Block b: thread 0 reads element 0 before anyone wrote it, then writes it.
DUET_KERNEL void read_unwritten_dynamic(float* out, std::uintptr_t* addresses) {
  DUET_DYNAMIC_SHARED(float, values);
  if (threadIdx.x == 0) {
    out[blockIdx.x] = dk::smem_load(&values[0]);
    addresses[blockIdx.x] = reinterpret_cast<std::uintptr_t>(values);
    dk::smem_store(&values[0], 1.0f);
  }
}

TEST_CASE("dynamic shared memory is 16-byte aligned and poisoned with NaN at every block",
          "[kernels]") {
  std::vector<float> out(3, 0.0f);
  std::vector<std::uintptr_t> addresses(3);
  DUET_LAUNCH(read_unwritten_dynamic, dim3(3), dim3(32), 20, nullptr, out.data(), addresses.data());
  for (int b = 0; b < 3; ++b) {
    CHECK(std::isnan(out[static_cast<std::size_t>(b)]));
    CHECK(addresses[static_cast<std::size_t>(b)] % 16 == 0);
  }
  uint32_t bits;
  std::memcpy(&bits, &out[1], sizeof(bits));
  CHECK(bits == 0xffffffffu);
}

// Even and odd threads take different paths, with different numbers of shared accesses and a
// data-dependent loop, between the same two barriers.
DUET_KERNEL void divergent_between_barriers(int* out) {
  DUET_DYNAMIC_SHARED(int, values);
  const int t = static_cast<int>(threadIdx.x);
  if (t % 2 == 0) {
    int sum = 0;
    for (int i = 0; i <= t; ++i) {
      sum += i;
    }
    dk::smem_store(&values[t], sum);
  } else {
    dk::smem_store(&values[t], -t);
    if (t % 3 == 0) {
      dk::smem_store(&values[t], -t * 3);
    }
  }
  dk::block_sync();
  if (t < 64) {
    out[t] = dk::smem_load(&values[63 - t]);
  }
}

TEST_CASE("threads may take different branches between barriers", "[kernels]") {
  std::vector<int> out(64);
  DUET_LAUNCH(divergent_between_barriers, dim3(1), dim3(64), 64 * sizeof(int), nullptr, out.data());
  for (int t = 0; t < 64; ++t) {
    const int source = 63 - t;
    const int expected =
        source % 2 == 0 ? source * (source + 1) / 2 : (source % 3 == 0 ? -3 * source : -source);
    CHECK(out[static_cast<std::size_t>(t)] == expected);
  }
}

DUET_KERNEL void early_exit_then_barrier(int* out) {
  DUET_DYNAMIC_SHARED(int, values);
  const int t = static_cast<int>(threadIdx.x);
  if (t >= 64) {
    return;  // whole warps leave; the barrier below waits only for those still running
  }
  dk::smem_store(&values[t], t * t);
  dk::block_sync();
  out[t] = dk::smem_load(&values[63 - t]);
}

TEST_CASE("exited threads do not hold a barrier back", "[kernels]") {
  std::vector<int> out(64);
  DUET_LAUNCH(early_exit_then_barrier, dim3(1), dim3(128), 64 * sizeof(int), nullptr, out.data());
  for (int t = 0; t < 64; ++t) {
    CHECK(out[static_cast<std::size_t>(t)] == (63 - t) * (63 - t));
  }
}

DUET_KERNEL void barrier_in_half_a_warp(float* out) {
  float v = static_cast<float>(threadIdx.x);
  if (dk::lane_id() < 16) {
    dk::block_sync();
  }
  v = dk::shfl_xor(v, 1);
  out[threadIdx.x] = v;
}

DUET_KERNEL void collective_in_half_a_warp(float* out) {
  float v = static_cast<float>(threadIdx.x);
  if (dk::lane_id() < 16) {
    v = dk::shfl_xor(v, 1);
  }
  out[threadIdx.x] = v;
}

DUET_KERNEL void two_kinds_of_collective(float* out) {
  float v = static_cast<float>(threadIdx.x);
  v = dk::lane_id() < 16 ? dk::shfl_xor(v, 1) : dk::shfl_idx(v, 0);
  out[threadIdx.x] = v;
}

DUET_KERNEL void unmatched_barriers(float* out) {
  // Warp 1 reaches a barrier that warp 0 never reaches, while warp 0 waits in a collective that
  // needs lanes of its own warp which wait at the barrier.
  if (dk::warp_id() == 0 && dk::lane_id() >= 8) {
    dk::block_sync();
  }
  if (dk::warp_id() == 0 && dk::lane_id() < 8) {
    out[threadIdx.x] = dk::shfl_idx(1.0f, 0);
  }
  dk::block_sync();
}

TEST_CASE("divergent barriers and collectives are errors, not hangs", "[kernels]") {
  std::vector<float> out(64);
  SECTION("block_sync taken by half a warp, a collective by the rest") {
    CHECK_THAT(dt::kernel_error_of([&] {
                 DUET_LAUNCH(barrier_in_half_a_warp, dim3(1), dim3(64), 0, nullptr, out.data());
               }),
               Contains("barrier_in_half_a_warp") && Contains("block (0,0,0)") &&
                   Contains("lanes 0-15") && Contains("block_sync") && Contains("warp 0"));
  }
  SECTION("a warp collective half the warp skips") {
    CHECK_THAT(dt::kernel_error_of([&] {
                 DUET_LAUNCH(collective_in_half_a_warp, dim3(1), dim3(64), 0, nullptr, out.data());
               }),
               Contains("exited while lanes 0-15 of warp 0 wait at warp "
                        "collective 'shfl_xor'"));
  }
  SECTION("two kinds of collective in one warp") {
    CHECK_THAT(dt::kernel_error_of([&] {
                 DUET_LAUNCH(two_kinds_of_collective, dim3(1), dim3(32), 0, nullptr, out.data());
               }),
               Contains("'shfl_idx'") && Contains("lanes 0-15") && Contains("'shfl_xor'") &&
                   Contains("divergent"));
  }
  SECTION("a barrier some lanes of a warp skip while the others wait in a collective") {
    CHECK_THAT(dt::kernel_error_of([&] {
                 DUET_LAUNCH(unmatched_barriers, dim3(1), dim3(64), 0, nullptr, out.data());
               }),
               Contains("lanes 0-7") && Contains("block_sync") && Contains("'shfl_idx'"));
  }
  // The runtime is usable afterwards.
  std::vector<int> rotated(32);
  DUET_LAUNCH(rotate_through_shared, dim3(1), dim3(32), 32 * sizeof(int), nullptr, rotated.data(),
              1);
  CHECK(rotated[31] == 0);
}

std::atomic<int> g_alive{0};

struct Tracked {
  Tracked() { ++g_alive; }
  ~Tracked() { --g_alive; }
  Tracked(const Tracked&) = delete;
  Tracked& operator=(const Tracked&) = delete;
};

DUET_KERNEL void throws_in_thread(int thrower) {
  const Tracked tracked;  // must be destroyed on every fiber when the launch aborts
  dk::block_sync();
  if (static_cast<int>(threadIdx.x) == thrower) {
    throw std::runtime_error("boom from thread " + std::to_string(thrower));
  }
  dk::block_sync();
}

TEST_CASE("an exception in a kernel thread propagates and unwinds every thread", "[kernels]") {
  REQUIRE_THROWS_WITH(DUET_LAUNCH(throws_in_thread, dim3(2), dim3(64), 0, nullptr, 37),
                      "boom from thread 37");
  CHECK(g_alive == 0);
  // Still usable, including the same kernel.
  REQUIRE_THROWS_WITH(DUET_LAUNCH(throws_in_thread, dim3(1), dim3(64), 0, nullptr, 0),
                      "boom from thread 0");
  CHECK(g_alive == 0);
  DUET_LAUNCH(throws_in_thread, dim3(3), dim3(64), 0, nullptr, -1);
  CHECK(g_alive == 0);
}

DUET_KERNEL void empty_kernel() {}

TEST_CASE("launch refuses what a GPU refuses", "[kernels]") {
  using host::HostKernelError;
  CHECK_THROWS_AS(DUET_LAUNCH(empty_kernel, dim3(1), dim3(0), 0, nullptr), HostKernelError);
  CHECK_THROWS_AS(DUET_LAUNCH(empty_kernel, dim3(1), dim3(1025), 0, nullptr), HostKernelError);
  CHECK_THROWS_AS(DUET_LAUNCH(empty_kernel, dim3(1), dim3(32, 32, 2), 0, nullptr), HostKernelError);
  CHECK_THROWS_AS(DUET_LAUNCH(empty_kernel, dim3(1), dim3(1, 1, 65), 0, nullptr), HostKernelError);
  CHECK_THROWS_AS(DUET_LAUNCH(empty_kernel, dim3(1, 65536), dim3(32), 0, nullptr), HostKernelError);
  CHECK_THROWS_AS(DUET_LAUNCH(empty_kernel, dim3(0), dim3(32), 0, nullptr), HostKernelError);

  SECTION("dynamic shared memory above H100's opt-in limit") {
    CHECK(host::options().max_dynamic_smem_bytes == 232448);
    DUET_LAUNCH(empty_kernel, dim3(1), dim3(32), 232448, nullptr);
    CHECK_THAT(
        dt::kernel_error_of([&] { DUET_LAUNCH(empty_kernel, dim3(1), dim3(32), 232449, nullptr); }),
        Contains("232449 bytes of dynamic shared") && Contains("limit of 232448"));
  }
  SECTION("the limit is configurable") {
    host::Options options;
    options.max_dynamic_smem_bytes = 48 * 1024;
    const host::ScopedOptions scoped(options);
    CHECK_THROWS_AS(DUET_LAUNCH(empty_kernel, dim3(1), dim3(32), 48 * 1024 + 1, nullptr),
                    HostKernelError);
    DUET_LAUNCH(empty_kernel, dim3(1), dim3(32), 48 * 1024, nullptr);
  }
}

DUET_KERNEL void launches_from_inside() { DUET_LAUNCH(empty_kernel, dim3(1), dim3(1), 0, nullptr); }

TEST_CASE("intrinsics outside a kernel and launches inside one are refused", "[kernels]") {
  CHECK_THROWS_AS(dk::block_sync(), host::HostKernelError);
  CHECK_THROWS_AS(dk::shfl_xor(1.0f, 1), host::HostKernelError);
  CHECK_THROWS_WITH(DUET_LAUNCH(launches_from_inside, dim3(1), dim3(4), 0, nullptr),
                    Contains("dynamic parallelism"));
}

DUET_KERNEL void lanes_and_warps(int* out) {
  out[2 * threadIdx.x] = dk::lane_id();
  out[2 * threadIdx.x + 1] = dk::warp_id();
}

DUET_KERNEL void lane_in_2d_block(int* out) {
  out[threadIdx.y * blockDim.x + threadIdx.x] = dk::lane_id();
}

TEST_CASE("lane_id and warp_id come from threadIdx.x in 1-D blocks", "[kernels]") {
  std::vector<int> out(2 * 96);
  DUET_LAUNCH(lanes_and_warps, dim3(1), dim3(96), 0, nullptr, out.data());
  for (int t = 0; t < 96; ++t) {
    CHECK(out[static_cast<std::size_t>(2 * t)] == t % 32);
    CHECK(out[static_cast<std::size_t>(2 * t + 1)] == t / 32);
  }
  std::vector<int> lanes(64);
  CHECK_THROWS_WITH(DUET_LAUNCH(lane_in_2d_block, dim3(1), dim3(16, 4), 0, nullptr, lanes.data()),
                    Contains("1-D blocks"));
  DUET_LAUNCH(lane_in_2d_block, dim3(1), dim3(32, 2), 0, nullptr, lanes.data());
  CHECK(lanes[33] == 1);
}

template <class T, int kScale>
DUET_KERNEL void scale(const T* in, T* out, int n) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) {
    out[i] = in[i] * static_cast<T>(kScale);
  }
}

TEST_CASE("DUET_LAUNCH takes template kernels and evaluates its arguments once", "[kernels]") {
  std::vector<double> in(100);
  std::iota(in.begin(), in.end(), 0.0);
  std::vector<double> out(100, -1.0);
  int evaluations = 0;
  const auto n = [&] {
    ++evaluations;
    return 100;
  };
  DUET_SET_MAX_DYNAMIC_SMEM((scale<double, 3>), 100 * 1024);   // a no-op on the host
  DUET_CUDA_CHECK(cudaFuncSetAttribute(nothing_on_the_host));  // not evaluated, not even compiled
  DUET_LAUNCH((scale<double, 3>), dim3(4), dim3(32), 0, nullptr, in.data(), out.data(), n());
  CHECK(evaluations == 1);
  for (int i = 0; i < 100; ++i) {
    CHECK(out[static_cast<std::size_t>(i)] == 3.0 * i);
  }
}

// 2 KB of per-thread array across barriers, on 256 fibers at once.
DUET_KERNEL void big_thread_arrays(float* out) {
  float local[512];
  for (int i = 0; i < 512; ++i) {
    local[i] = static_cast<float>(threadIdx.x + i);
  }
  dk::block_sync();
  float sum = 0.0f;
  for (int i = 0; i < 512; ++i) {
    sum += local[i];
  }
  dk::block_sync();
  out[threadIdx.x] = sum;
}

TEST_CASE("fiber stacks hold kilobyte per-thread arrays", "[kernels]") {
  std::vector<float> out(256);
  DUET_LAUNCH(big_thread_arrays, dim3(2), dim3(256), 0, nullptr, out.data());
  for (int t = 0; t < 256; ++t) {
    CHECK(out[static_cast<std::size_t>(t)] == static_cast<float>(512 * t + 511 * 512 / 2));
  }
}

TEST_CASE("OS threads launch independently at the same time", "[kernels]") {
  std::vector<int> a(64);
  std::vector<int> b(64);
  std::thread other([&] {
    DUET_LAUNCH(rotate_through_shared, dim3(1), dim3(64), 64 * sizeof(int), nullptr, a.data(), 200);
  });
  DUET_LAUNCH(rotate_through_shared, dim3(1), dim3(64), 64 * sizeof(int), nullptr, b.data(), 201);
  other.join();
  for (int t = 0; t < 64; ++t) {
    CHECK(a[static_cast<std::size_t>(t)] == (t + 200) % 64);
    CHECK(b[static_cast<std::size_t>(t)] == (t + 201) % 64);
  }
}

DUET_KERNEL void barrier_loop(int rounds) {
  for (int i = 0; i < rounds; ++i) {
    dk::block_sync();
  }
}

TEST_CASE("fiber switch throughput", "[kernels][.bench]") {
  host::reset_counters();
  const auto start = std::chrono::steady_clock::now();
  DUET_LAUNCH(barrier_loop, dim3(4), dim3(256), 0, nullptr, 2000);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const host::Counters c = host::counters();
  std::printf("%llu fiber switches in %.3f s: %.1f million switches/s\n",
              static_cast<unsigned long long>(c.fiber_switches), seconds,
              static_cast<double>(c.fiber_switches) / seconds / 1e6);
  CHECK(c.block_barriers == 4 * 2000);
}

}  // namespace
