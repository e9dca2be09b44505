// The shared-memory race detector, bounds and alignment checks of the host execution layer.
// Each racy kernel has a twin made clean by the ordering it lacked.
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "kernel_error.h"
#include "kernels/device.h"
#include "kernels/intrinsics.h"

namespace dk = duet::kernels;
namespace host = duet::kernels::host;
namespace dt = duet::kernels::testing;
using Catch::Matchers::Contains;

namespace {

enum class Order : int { kNone = 0, kBlockSync = 1, kWarpSync = 2, kShfl = 3 };

DUET_DEVICE void order(Order how) {
  if (how == Order::kBlockSync) {
    dk::block_sync();
  } else if (how == Order::kWarpSync) {
    dk::warp_sync();
  } else if (how == Order::kShfl) {
    dk::shfl_xor(0.0f, 1);
  }
}

// Thread `writer` stores element 5, then thread `reader` loads it.
DUET_KERNEL void write_then_read(float* out, int writer, int reader, Order how) {
  DUET_DYNAMIC_SHARED(float, values);
  const int t = static_cast<int>(threadIdx.x);
  if (t == writer) {
    dk::smem_store(&values[5], 42.0f);
  }
  order(how);
  if (t == reader) {
    out[0] = dk::smem_load(&values[5]);
  }
}

TEST_CASE("a write and another thread's read with no barrier between them is a race",
          "[kernels][race]") {
  std::vector<float> out(1);
  CHECK_THAT(dt::kernel_error_of([&] {
               DUET_LAUNCH(write_then_read, dim3(2), dim3(64), 64, nullptr, out.data(), 0, 40,
                           Order::kNone);
             }),
             Contains("write_then_read") && Contains("block (0,0,0)") &&
                 Contains("race on byte 20 of dynamic shared memory") &&
                 Contains("thread 0 (threadIdx (0,0,0), warp 0 lane 0) did smem_store") &&
                 Contains("thread 40 (threadIdx (40,0,0), warp 1 lane 8) did smem_load") &&
                 Contains("no block_sync"));
}

TEST_CASE("block_sync orders a write and another thread's read", "[kernels][race]") {
  std::vector<float> out(1);
  DUET_LAUNCH(write_then_read, dim3(2), dim3(64), 64, nullptr, out.data(), 0, 40,
              Order::kBlockSync);
  CHECK(out[0] == 42.0f);
}

TEST_CASE("within a warp, warp_sync or another collective orders accesses", "[kernels][race]") {
  std::vector<float> out(1);
  SECTION("unordered lanes of one warp race") {
    CHECK_THROWS_WITH(DUET_LAUNCH(write_then_read, dim3(1), dim3(64), 64, nullptr, out.data(), 3, 9,
                                  Order::kNone),
                      Contains("thread 3") && Contains("thread 9") &&
                          Contains("no warp_sync or other collective of their warp"));
  }
  SECTION("warp_sync") {
    DUET_LAUNCH(write_then_read, dim3(1), dim3(64), 64, nullptr, out.data(), 3, 9,
                Order::kWarpSync);
    CHECK(out[0] == 42.0f);
  }
  SECTION("shfl") {
    DUET_LAUNCH(write_then_read, dim3(1), dim3(64), 64, nullptr, out.data(), 3, 9, Order::kShfl);
    CHECK(out[0] == 42.0f);
  }
  SECTION("warp_sync does not order two warps") {
    CHECK_THROWS_WITH(DUET_LAUNCH(write_then_read, dim3(1), dim3(64), 64, nullptr, out.data(), 3,
                                  35, Order::kWarpSync),
                      Contains("thread 3") && Contains("thread 35"));
  }
}

// Thread 0 reads element 1, then thread `writer` writes it (write after read).
DUET_KERNEL void read_then_write(float* out, int writer, Order how) {
  DUET_DYNAMIC_SHARED(float, values);
  const int t = static_cast<int>(threadIdx.x);
  if (t == 0) {
    dk::smem_store(&values[1], 1.0f);
  }
  dk::block_sync();
  if (t < 8) {
    out[t] = dk::smem_load(&values[1]);  // eight readers: read-read is never a race
  }
  order(how);
  if (t == writer) {
    dk::smem_store(&values[1], 2.0f);
  }
}

TEST_CASE("a write after other threads' reads needs ordering too", "[kernels][race]") {
  std::vector<float> out(8);
  CHECK_THROWS_WITH(
      DUET_LAUNCH(read_then_write, dim3(1), dim3(64), 64, nullptr, out.data(), 40, Order::kNone),
      Contains("did smem_load (read), then thread 40") && Contains("did smem_store (write)"));
  CHECK_THROWS_WITH(
      DUET_LAUNCH(read_then_write, dim3(1), dim3(64), 64, nullptr, out.data(), 7, Order::kNone),
      Contains("then thread 7"));
  DUET_LAUNCH(read_then_write, dim3(1), dim3(64), 64, nullptr, out.data(), 40, Order::kBlockSync);
  DUET_LAUNCH(read_then_write, dim3(1), dim3(64), 64, nullptr, out.data(), 7, Order::kWarpSync);
  CHECK(out[7] == 1.0f);
}

DUET_KERNEL void two_writers(int first, int second, Order how) {
  DUET_DYNAMIC_SHARED(int, values);
  const int t = static_cast<int>(threadIdx.x);
  if (t == first) {
    dk::smem_store(&values[3], 1);
  }
  order(how);
  if (t == second) {
    dk::smem_store(&values[3], 2);
  }
}

TEST_CASE("two writes by different threads need ordering", "[kernels][race]") {
  CHECK_THROWS_WITH(DUET_LAUNCH(two_writers, dim3(1), dim3(64), 64, nullptr, 2, 50, Order::kNone),
                    Contains("byte 12") && Contains("thread 2") && Contains("thread 50"));
  DUET_LAUNCH(two_writers, dim3(1), dim3(64), 64, nullptr, 2, 50, Order::kBlockSync);
}

// Lanes write neighbouring 16-bit halves of the same 32-bit words: distinct bytes, no race.
DUET_KERNEL void neighbouring_halves(uint16_t* out) {
  DUET_DYNAMIC_SHARED(uint16_t, halves);
  const unsigned t = threadIdx.x;
  dk::smem_store(&halves[t], static_cast<uint16_t>(t * 3));
  dk::block_sync();
  out[t] = dk::smem_load(&halves[t ^ 1u]);
}

TEST_CASE("the detector works per byte: neighbouring 16-bit stores do not race",
          "[kernels][race]") {
  std::vector<uint16_t> out(64);
  DUET_LAUNCH(neighbouring_halves, dim3(1), dim3(64), 128, nullptr, out.data());
  for (unsigned t = 0; t < 64; ++t) {
    CHECK(out[t] == static_cast<uint16_t>((t ^ 1u) * 3));
  }
}

DUET_KERNEL void static_shared_race(float* out, Order how) {
  __shared__ float cell[2];
  if (threadIdx.x == 1) {
    dk::smem_store(&cell[1], 7.0f);
  }
  order(how);
  if (threadIdx.x == 33) {
    out[0] = dk::smem_load(&cell[1]);
  }
}

TEST_CASE("static __shared__ memory is race-checked too", "[kernels][race]") {
  std::vector<float> out(1);
  CHECK_THROWS_WITH(
      DUET_LAUNCH(static_shared_race, dim3(1), dim3(64), 0, nullptr, out.data(), Order::kNone),
      Contains("static __shared__ memory at address 0x") && Contains("thread 1 ") &&
          Contains("thread 33 "));
  DUET_LAUNCH(static_shared_race, dim3(1), dim3(64), 0, nullptr, out.data(), Order::kBlockSync);
  CHECK(out[0] == 7.0f);
}

// Thread 0 copies a chunk with cp.async; thread 1 reads it.
DUET_KERNEL void cp_async_then_read(const float* src, float* out, Order how) {
  DUET_DYNAMIC_SHARED(float, chunk);
  if (threadIdx.x == 0) {
    dk::cp_async_16(chunk, src, 16);
    dk::cp_async_commit();
    dk::cp_async_wait<0>();
  }
  order(how);
  if (threadIdx.x == 1) {
    out[0] = dk::smem_load(&chunk[2]);
  }
}

TEST_CASE("cp_async_16 counts as a write at issue", "[kernels][race]") {
  const std::vector<float> src = {1.0f, 2.0f, 3.0f, 4.0f};
  std::vector<float> out(1);
  CHECK_THROWS_WITH(DUET_LAUNCH(cp_async_then_read, dim3(1), dim3(32), 16, nullptr, src.data(),
                                out.data(), Order::kNone),
                    Contains("byte 8") && Contains("did cp_async_16 (write)") &&
                        Contains("did smem_load (read)"));
  DUET_LAUNCH(cp_async_then_read, dim3(1), dim3(32), 16, nullptr, src.data(), out.data(),
              Order::kBlockSync);
  CHECK(out[0] == 3.0f);
}

// Each lane writes one 16-byte row; ldmatrix then reads rows other lanes wrote.
DUET_KERNEL void rows_then_ldmatrix(uint32_t* out, Order how) {
  DUET_DYNAMIC_SHARED(uint16_t, rows);
  const int lane = dk::lane_id();
  if (lane < 8) {
    for (int i = 0; i < 8; ++i) {
      dk::smem_store(&rows[lane * 8 + i], static_cast<uint16_t>(lane * 8 + i));
    }
  }
  order(how);
  uint32_t r[1];
  dk::ldmatrix_x1(r, rows + 8 * ((lane + 1) % 8));
  out[lane] = r[0];
}

TEST_CASE("ldmatrix reads are race-checked per row", "[kernels][race]") {
  std::vector<uint32_t> out(32);
  CHECK_THROWS_WITH(
      DUET_LAUNCH(rows_then_ldmatrix, dim3(1), dim3(32), 128, nullptr, out.data(), Order::kNone),
      Contains("did smem_store (write)") && Contains("did ldmatrix (read)"));
  DUET_LAUNCH(rows_then_ldmatrix, dim3(1), dim3(32), 128, nullptr, out.data(), Order::kWarpSync);
  // Lane 0 gets row 0 of the matrix, which lane 0 pointed at stored row 1: values 8 and 9.
  CHECK(out[0] == (8u | (9u << 16)));
}

TEST_CASE("race checking can be switched off", "[kernels][race]") {
  host::Options options;
  options.race_check = false;
  const host::ScopedOptions scoped(options);
  std::vector<float> out(1);
  DUET_LAUNCH(write_then_read, dim3(1), dim3(64), 64, nullptr, out.data(), 0, 40, Order::kNone);
  CHECK(out[0] == 42.0f);  // thread 0 ran first: the race happened to go the writer's way
}

DUET_KERNEL void block_boundary(float* out) {
  DUET_DYNAMIC_SHARED(float, values);
  // Each block: thread (block) writes, no barrier; earlier blocks' accesses must not count.
  const int t = static_cast<int>(threadIdx.x);
  if (t == static_cast<int>(blockIdx.x)) {
    dk::smem_store(&values[0], static_cast<float>(t));
    out[blockIdx.x] = dk::smem_load(&values[0]);
  }
}

TEST_CASE("race state starts afresh in every block", "[kernels][race]") {
  std::vector<float> out(4);
  DUET_LAUNCH(block_boundary, dim3(4), dim3(32), 16, nullptr, out.data());
  CHECK(out[3] == 3.0f);
}

DUET_KERNEL void store_at(int byte_offset) {
  DUET_DYNAMIC_SHARED(unsigned char, bytes);
  if (threadIdx.x == 0) {
    dk::smem_store(reinterpret_cast<float*>(bytes + byte_offset), 1.0f);
  }
}

TEST_CASE("shared accesses are bounds- and alignment-checked", "[kernels][race]") {
  DUET_LAUNCH(store_at, dim3(1), dim3(32), 62, nullptr, 56);
  // Partly outside: reported here. Wholly outside is left to the ASan twin (kernels_asan_*).
  CHECK_THROWS_WITH(DUET_LAUNCH(store_at, dim3(1), dim3(32), 62, nullptr, 60),
                    Contains("bytes [60, 64) is outside the block's 62 bytes of dynamic shared"));
  CHECK_THROWS_WITH(DUET_LAUNCH(store_at, dim3(1), dim3(32), 64, nullptr, 54),
                    Contains("not aligned to 4 bytes"));
}

}  // namespace
