// The host emulation of every warp-level intrinsic, against plain array and matrix references and
// against the PTX ISA fragment tables of fragment_tables.h: every lane, every fragment element.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "fragment_tables.h"
#include "intrinsic_test_kernels.cuh"
#include "mma_reference.h"

namespace dk = duet::kernels;
namespace host = duet::kernels::host;
namespace dt = duet::kernels::testing;
using Catch::Matchers::Contains;

namespace {

// ---- shfl
// ----------------------------------------------------------------------------------------

TEST_CASE("shfl_xor and shfl_idx move every lane's value as __shfl_*_sync do", "[kernels]") {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> uniform(-10.0f, 10.0f);
  std::uniform_int_distribution<int> lane(0, 63);  // >= 32 wraps, as srcLane % 32 does
  const int threads = 64;
  std::vector<float> in(threads);
  std::vector<int> src(threads);
  for (int t = 0; t < threads; ++t) {
    in[static_cast<std::size_t>(t)] = uniform(rng);
    src[static_cast<std::size_t>(t)] = lane(rng);
  }
  for (int mask = 0; mask < 32; ++mask) {
    std::vector<float> xor_out(threads);
    std::vector<float> idx_out(threads);
    host::reset_counters();
    dt::launch_shfl(in.data(), src.data(), xor_out.data(), idx_out.data(), mask, threads, nullptr);
    CHECK(host::counters().warp_collectives == 2 * 2);  // two warps, two shuffles each
    for (int t = 0; t < threads; ++t) {
      const int base = t & ~31;
      INFO("mask " << mask << " thread " << t);
      CHECK(xor_out[static_cast<std::size_t>(t)] ==
            in[static_cast<std::size_t>(base + ((t & 31) ^ mask))]);
      CHECK(idx_out[static_cast<std::size_t>(t)] ==
            in[static_cast<std::size_t>(base + (src[static_cast<std::size_t>(t)] & 31))]);
    }
  }
}

TEST_CASE("shfl in a partial warp may not read a lane that does not exist", "[kernels]") {
  std::vector<float> in(48, 1.0f);
  std::vector<int> src(48, 3);
  std::vector<float> xor_out(48);
  std::vector<float> idx_out(48);
  dt::launch_shfl(in.data(), src.data(), xor_out.data(), idx_out.data(), 15, 48, nullptr);
  CHECK_THROWS_WITH(
      dt::launch_shfl(in.data(), src.data(), xor_out.data(), idx_out.data(), 16, 48, nullptr),
      Contains("lane 0 reads lane 16, which this partial warp of 16 threads lacks"));
}

// ---- mma
// -------------------------------------------------------------------------------------------

dt::MmaKind kind_of(dt::InputType type) {
  return type == dt::InputType::kBf16  ? dt::MmaKind::kBf16
         : type == dt::InputType::kF16 ? dt::MmaKind::kF16
                                       : dt::MmaKind::kTf32;
}

std::vector<float> run_mma(dt::InputType type, const std::vector<float>& a,
                           const std::vector<float>& b, const std::vector<float>& c) {
  const dt::MmaFragments f = dt::make_fragments(type, a, b, c);
  std::vector<float> d(32 * 4, -1.0f);
  dt::launch_mma(kind_of(type), f.a.data(), f.b.data(), f.c.data(), d.data(), nullptr);
  return dt::gather_accumulator(d);
}

const char* type_name(dt::InputType type) {
  return type == dt::InputType::kBf16 ? "bf16" : type == dt::InputType::kF16 ? "f16" : "tf32";
}

TEST_CASE("mma equals a plain matmul: exact on small integers, to float32 rounding on random data",
          "[kernels]") {
  std::mt19937 rng(2);
  for (const dt::InputType type :
       {dt::InputType::kBf16, dt::InputType::kF16, dt::InputType::kTf32}) {
    const int k = type == dt::InputType::kTf32 ? 8 : 16;
    for (int trial = 0; trial < 20; ++trial) {
      const bool integers = trial % 2 == 0;
      const std::vector<float> a = dt::random_matrix(rng, type, 16, k, integers);
      const std::vector<float> b = dt::random_matrix(rng, type, k, 8, integers);
      const std::vector<float> c = dt::random_matrix(rng, dt::InputType::kTf32, 16, 8, integers);
      std::vector<double> magnitude;
      const std::vector<double> expected = dt::reference_matmul(a, b, c, 16, k, 8, &magnitude);
      const std::vector<float> d = run_mma(type, a, b, c);
      for (std::size_t i = 0; i < d.size(); ++i) {
        INFO(type_name(type) << " trial " << trial << " element (" << i / 8 << "," << i % 8 << ")");
        if (integers) {
          CHECK(d[i] == expected[i]);
        } else {
          // k + 1 float32 additions, each off by at most half an ulp of a partial sum.
          CHECK(std::fabs(d[i] - expected[i]) <= (k + 1) * 0x1p-24 * magnitude[i]);
        }
      }
    }
  }
}

TEST_CASE("mma reads every A, B and C element from the lane and register the PTX ISA gives",
          "[kernels]") {
  for (const dt::InputType type :
       {dt::InputType::kBf16, dt::InputType::kF16, dt::InputType::kTf32}) {
    const int k_size = type == dt::InputType::kTf32 ? 8 : 16;
    std::vector<float> zeros_c(16 * 8, 0.0f);
    // A one-hot at (row, k) against B[k'][n] = k' + 16 n + 1: D row `row` is B row k.
    std::vector<float> b(static_cast<std::size_t>(k_size * 8));
    for (int kk = 0; kk < k_size; ++kk) {
      for (int n = 0; n < 8; ++n) {
        b[static_cast<std::size_t>(kk * 8 + n)] = static_cast<float>(kk + 16 * n + 1);
      }
    }
    for (int row = 0; row < 16; ++row) {
      for (int k = 0; k < k_size; ++k) {
        std::vector<float> a(static_cast<std::size_t>(16 * k_size), 0.0f);
        a[static_cast<std::size_t>(row * k_size + k)] = 1.0f;
        const std::vector<float> d = run_mma(type, a, b, zeros_c);
        for (int r = 0; r < 16; ++r) {
          for (int n = 0; n < 8; ++n) {
            INFO(type_name(type) << " A(" << row << "," << k << ") D(" << r << "," << n << ")");
            CHECK(d[static_cast<std::size_t>(r * 8 + n)] ==
                  (r == row ? static_cast<float>(k + 16 * n + 1) : 0.0f));
          }
        }
      }
    }
    // B one-hot at (k, col) against A[r][k'] = r + 16 k' + 1: D column `col` is A column k.
    std::vector<float> a(static_cast<std::size_t>(16 * k_size));
    for (int r = 0; r < 16; ++r) {
      for (int kk = 0; kk < k_size; ++kk) {
        a[static_cast<std::size_t>(r * k_size + kk)] = static_cast<float>(r + 16 * kk + 1);
      }
    }
    for (int k = 0; k < k_size; ++k) {
      for (int col = 0; col < 8; ++col) {
        std::vector<float> one_hot(static_cast<std::size_t>(k_size * 8), 0.0f);
        one_hot[static_cast<std::size_t>(k * 8 + col)] = 1.0f;
        const std::vector<float> d = run_mma(type, a, one_hot, zeros_c);
        for (int r = 0; r < 16; ++r) {
          for (int n = 0; n < 8; ++n) {
            INFO(type_name(type) << " B(" << k << "," << col << ") D(" << r << "," << n << ")");
            CHECK(d[static_cast<std::size_t>(r * 8 + n)] ==
                  (n == col ? static_cast<float>(r + 16 * k + 1) : 0.0f));
          }
        }
      }
    }
    // C alone: D = C through the accumulator table, element by element distinct.
    std::vector<float> c(16 * 8);
    std::iota(c.begin(), c.end(), 1.0f);
    const std::vector<float> d =
        run_mma(type, std::vector<float>(static_cast<std::size_t>(16 * k_size), 0.0f),
                std::vector<float>(static_cast<std::size_t>(k_size * 8), 0.0f), c);
    CHECK(d == c);
  }
}

TEST_CASE("the fragment tables are bijections onto every lane and element", "[kernels]") {
  // Guards the test tables themselves: each (lane, element) appears exactly once.
  const auto check = [](int rows, int cols, int elements, auto slot) {
    std::vector<int> seen(static_cast<std::size_t>(32 * elements), 0);
    for (int r = 0; r < rows; ++r) {
      for (int c = 0; c < cols; ++c) {
        const dt::FragmentSlot s = slot(r, c);
        REQUIRE(s.lane >= 0);
        REQUIRE(s.lane < 32);
        REQUIRE(s.element >= 0);
        REQUIRE(s.element < elements);
        ++seen[static_cast<std::size_t>(s.lane * elements + s.element)];
      }
    }
    CHECK(std::all_of(seen.begin(), seen.end(), [](int n) { return n == 1; }));
  };
  check(16, 16, 8, dt::m16n8k16_a_slot);
  check(16, 8, 4, dt::m16n8k16_b_slot);
  check(16, 8, 4, dt::accumulator_slot);
  check(16, 8, 4, dt::m16n8k8_tf32_a_slot);
  check(8, 8, 2, dt::m16n8k8_tf32_b_slot);
  check(8, 8, 2, [](int r, int c) { return dt::ldmatrix_slot(r, c, false); });
  check(8, 8, 2, [](int r, int c) { return dt::ldmatrix_slot(r, c, true); });
}

DUET_KERNEL void mma_in_partial_warp(float* out) {
  const uint32_t a[4] = {0, 0, 0, 0};
  const uint32_t b[2] = {0, 0};
  const float c[4] = {0, 0, 0, 0};
  float d[4];
  dk::mma_m16n8k16_bf16(d, a, b, c);
  out[threadIdx.x] = d[0];
}

TEST_CASE("mma needs a full warp", "[kernels]") {
  std::vector<float> out(48);
  CHECK_THROWS_WITH(DUET_LAUNCH(mma_in_partial_warp, dim3(1), dim3(48), 0, nullptr, out.data()),
                    Contains("mma_m16n8k16 needs all 32 lanes of a warp; this warp has 16"));
}

// ---- ldmatrix
// ------------------------------------------------------------------------------------

template <int kMatrices, bool kTrans>
void check_ldmatrix() {
  std::mt19937 rng(3 + kMatrices + (kTrans ? 10 : 0));
  std::vector<uint16_t> rows(kMatrices * 64);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    rows[i] = static_cast<uint16_t>(0x1000 + i);
  }
  // Lanes 0..8*kMatrices-1 point at a shuffled order of the stored rows; the rest at row 0
  // (their addresses are ignored, as on sm_80+).
  std::vector<int> row_of_lane(32, 0);
  std::iota(row_of_lane.begin(), row_of_lane.begin() + 8 * kMatrices, 0);
  std::shuffle(row_of_lane.begin(), row_of_lane.begin() + 8 * kMatrices, rng);
  std::vector<uint32_t> out(32 * kMatrices, 0xdeadbeefu);
  dt::launch_ldmatrix<kMatrices, kTrans>(rows.data(), row_of_lane.data(), out.data(), nullptr);
  for (int j = 0; j < kMatrices; ++j) {
    for (int r = 0; r < 8; ++r) {
      const int stored = row_of_lane[static_cast<std::size_t>(8 * j + r)];
      for (int c = 0; c < 8; ++c) {
        const dt::FragmentSlot s = dt::ldmatrix_slot(r, c, kTrans);
        const uint32_t reg = out[static_cast<std::size_t>(s.lane * kMatrices + j)];
        const auto value = static_cast<uint16_t>(s.element == 0 ? reg & 0xffffu : reg >> 16);
        INFO("x" << kMatrices << (kTrans ? ".trans" : "") << " matrix " << j << " (" << r << ","
                 << c << ") -> lane " << s.lane << " half " << s.element);
        CHECK(value == rows[static_cast<std::size_t>(stored * 8 + c)]);
      }
    }
  }
}

TEST_CASE("ldmatrix gives every lane the elements of the PTX ISA layout", "[kernels]") {
  check_ldmatrix<1, false>();
  check_ldmatrix<2, false>();
  check_ldmatrix<4, false>();
  check_ldmatrix<2, true>();
  check_ldmatrix<4, true>();
}

template <dt::MmaKind kKind, dt::LoadPlan kPlan>
void check_ldmatrix_mma(std::mt19937& rng, bool integers) {
  const dt::InputType type =
      kKind == dt::MmaKind::kBf16 ? dt::InputType::kBf16 : dt::InputType::kF16;
  const dt::LdmatrixMmaOperands o = dt::random_ldmatrix_mma_operands(rng, type, integers);
  std::vector<float> d(256, -1.0f);
  dt::launch_ldmatrix_mma<kKind, kPlan>(o.a_bits.data(), o.b_bits.data(), o.bt_bits.data(),
                                        o.c.data(), d.data(), nullptr);
  std::vector<double> magnitude;
  const std::vector<double> expected =
      dt::reference_matmul(o.a, o.b, o.c, 16, 16, 16, &magnitude);
  for (std::size_t i = 0; i < d.size(); ++i) {
    INFO("plan " << static_cast<int>(kPlan) << " kind " << static_cast<int>(kKind) << " element ("
                 << i / 16 << "," << i % 16 << ")");
    if (integers) {
      CHECK(d[i] == expected[i]);
    } else {
      CHECK(std::fabs(d[i] - expected[i]) <= 17 * 0x1p-24 * magnitude[i]);
    }
  }
}

TEST_CASE("ldmatrix (x1, x2, x4, .trans) feeding mma computes A*B from row-major shared memory",
          "[kernels]") {
  std::mt19937 rng(4);
  for (const bool integers : {true, false}) {
    check_ldmatrix_mma<dt::MmaKind::kBf16, dt::LoadPlan::kX4AndX4Trans>(rng, integers);
    check_ldmatrix_mma<dt::MmaKind::kBf16, dt::LoadPlan::kX1AndX2>(rng, integers);
    check_ldmatrix_mma<dt::MmaKind::kBf16, dt::LoadPlan::kX2AndX2Trans>(rng, integers);
    check_ldmatrix_mma<dt::MmaKind::kBf16, dt::LoadPlan::kX4AndX1>(rng, integers);
    check_ldmatrix_mma<dt::MmaKind::kF16, dt::LoadPlan::kX4AndX4Trans>(rng, integers);
    check_ldmatrix_mma<dt::MmaKind::kF16, dt::LoadPlan::kX1AndX2>(rng, integers);
    check_ldmatrix_mma<dt::MmaKind::kF16, dt::LoadPlan::kX2AndX2Trans>(rng, integers);
    check_ldmatrix_mma<dt::MmaKind::kF16, dt::LoadPlan::kX4AndX1>(rng, integers);
  }
}

DUET_KERNEL void ldmatrix_misaligned(uint32_t* out) {
  DUET_DYNAMIC_SHARED(uint16_t, rows);
  uint32_t r[1];
  dk::ldmatrix_x1(r, rows + (dk::lane_id() == 3 ? 4 : 8 * (dk::lane_id() % 8)));
  out[threadIdx.x] = r[0];
}

TEST_CASE("ldmatrix row addresses must be 16-byte aligned", "[kernels]") {
  std::vector<uint32_t> out(32);
  host::Options options;
  options.race_check = false;  // the rows are never written: only alignment is under test
  const host::ScopedOptions scoped(options);
  CHECK_THROWS_WITH(DUET_LAUNCH(ldmatrix_misaligned, dim3(1), dim3(32), 128, nullptr, out.data()),
                    Contains("lane 3 passed a row address that is not 16-byte aligned"));
}

// ---- cp.async
// -------------------------------------------------------------------------------------

TEST_CASE("cp_async_16 copies src_bytes and zero-fills the rest of the 16", "[kernels]") {
  const int threads = 17;  // src_bytes 0..16
  // Exactly sized: the last chunk may only read its 16 bytes, and chunk t only its first t.
  std::vector<unsigned char> src(16 * threads);
  for (std::size_t i = 0; i < src.size(); ++i) {
    src[i] = static_cast<unsigned char>(i * 7 + 1);
  }
  std::vector<int> src_bytes(threads);
  std::iota(src_bytes.begin(), src_bytes.end(), 0);
  std::vector<unsigned char> out(16 * threads);
  dt::launch_cp_async(src.data(), src_bytes.data(), out.data(), threads, nullptr);
  for (int t = 0; t < threads; ++t) {
    for (int i = 0; i < 16; ++i) {
      INFO("src_bytes " << t << " byte " << i);
      CHECK(out[static_cast<std::size_t>(16 * t + i)] ==
            (i < t ? src[static_cast<std::size_t>(16 * t + i)] : 0));
    }
  }
}

// Per thread: chunk A (group 0), chunk B (group 1), chunk C (never committed before the waits).
DUET_KERNEL void cp_async_groups(const float* src, float* out) {
  DUET_DYNAMIC_SHARED(float, smem);
  const unsigned t = threadIdx.x;
  float* a = smem + 12 * t;
  float* b = a + 4;
  float* c = a + 8;
  float* o = out + 6 * t;
  dk::cp_async_16(a, src + 12 * t, 16);
  o[0] = dk::smem_load(a);  // issued, not waited for: poison
  dk::cp_async_commit();
  dk::cp_async_16(b, src + 12 * t + 4, 16);
  dk::cp_async_commit();
  dk::cp_async_16(c, src + 12 * t + 8, 16);
  dk::cp_async_wait<1>();   // retires group 0 only
  o[1] = dk::smem_load(a);  // A landed
  o[2] = dk::smem_load(b);  // B (the newest group) still pending
  dk::cp_async_wait<0>();
  o[3] = dk::smem_load(b);  // B landed
  o[4] = dk::smem_load(c);  // C was never committed: a wait does not complete it
  dk::cp_async_commit();
  dk::cp_async_wait<0>();
  o[5] = dk::smem_load(c);
}

TEST_CASE("cp.async completes only when a wait retires its group", "[kernels]") {
  const int threads = 64;
  std::vector<float> src(12 * threads);
  std::iota(src.begin(), src.end(), 1.0f);
  std::vector<float> out(6 * threads, 0.0f);
  DUET_LAUNCH(cp_async_groups, dim3(1), dim3(threads), 12 * threads * sizeof(float), nullptr,
              src.data(), out.data());
  for (int t = 0; t < threads; ++t) {
    const float* o = &out[static_cast<std::size_t>(6 * t)];
    INFO("thread " << t);
    CHECK(std::isnan(o[0]));
    CHECK(o[1] == src[static_cast<std::size_t>(12 * t)]);
    CHECK(std::isnan(o[2]));
    CHECK(o[3] == src[static_cast<std::size_t>(12 * t + 4)]);
    CHECK(std::isnan(o[4]));
    CHECK(o[5] == src[static_cast<std::size_t>(12 * t + 8)]);
  }
}

DUET_KERNEL void cp_async_bad(const unsigned char* src, int dst_offset, int src_bytes) {
  DUET_DYNAMIC_SHARED(unsigned char, smem);
  dk::cp_async_16(smem + dst_offset, src, src_bytes);
  dk::cp_async_commit();
  dk::cp_async_wait<0>();
}

TEST_CASE("cp_async_16 checks alignment and src_bytes", "[kernels]") {
  alignas(16) unsigned char src[32] = {};
  CHECK_THROWS_WITH(DUET_LAUNCH(cp_async_bad, dim3(1), dim3(1), 64, nullptr, src, 8, 16),
                    Contains("16-byte aligned"));
  CHECK_THROWS_WITH(DUET_LAUNCH(cp_async_bad, dim3(1), dim3(1), 64, nullptr, src + 4, 0, 16),
                    Contains("16-byte aligned"));
  CHECK_THROWS_WITH(DUET_LAUNCH(cp_async_bad, dim3(1), dim3(1), 64, nullptr, src, 0, 17),
                    Contains("src_bytes = 17"));
  DUET_LAUNCH(cp_async_bad, dim3(1), dim3(1), 64, nullptr, src, 48, 16);
}

// ---- atomics and vector types -----------------------------------------------------------------

static_assert(sizeof(float4) == 16 && alignof(float4) == 16, "CUDA's float4");
static_assert(sizeof(uint4) == 16 && alignof(uint4) == 16, "CUDA's uint4");
static_assert(sizeof(int4) == 16 && alignof(int4) == 16, "CUDA's int4");
static_assert(sizeof(float2) == 8 && alignof(float2) == 8, "CUDA's float2");
static_assert(sizeof(uint2) == 8 && alignof(uint2) == 8, "CUDA's uint2");
static_assert(sizeof(int2) == 8 && alignof(int2) == 8, "CUDA's int2");

DUET_KERNEL void accumulate(float* total, int* count, float4* wide) {
  DUET_DYNAMIC_SHARED(float4, staged);
  dk::smem_store(&staged[threadIdx.x],
                 make_float4(1.0f, 2.0f, 3.0f, static_cast<float>(threadIdx.x)));
  dk::block_sync();
  const float4 mine = dk::smem_load(&staged[blockDim.x - 1 - threadIdx.x]);
  dk::atomic_add(total, mine.w);
  dk::atomic_add(count, 1);
  wide[blockIdx.x * blockDim.x + threadIdx.x] = mine;
}

TEST_CASE("atomic_add and CUDA's vector types", "[kernels]") {
  float total = 0.0f;
  int count = 0;
  std::vector<float4> wide(3 * 64);
  DUET_LAUNCH(accumulate, dim3(3), dim3(64), 64 * sizeof(float4), nullptr, &total, &count,
              wide.data());
  CHECK(count == 3 * 64);
  CHECK(total == 3.0f * (63 * 64 / 2));
  CHECK(wide[5].w == 58.0f);
  CHECK(wide[5].y == 2.0f);
}

}  // namespace
