// [cuda]: the kernels of intrinsic_test_kernels.cuh run on a real GPU and through the host
// execution layer, compared element by element: the evidence that the emulation matches the
// hardware. Exact wherever the hardware is exact (shfl, ldmatrix, cp.async, conversions; mma on
// small integers); mma on random data within float32 summation error, since tensor cores may
// round their sums differently. Without a CUDA device every test WARNs "SKIP" and returns.
#include <catch2/catch.hpp>

#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "common/device_skip.h"
#include "conversion_reference.h"
#include "intrinsic_cuda_runner.h"
#include "intrinsic_test_kernels.cuh"
#include "mma_reference.h"

namespace dt = duet::kernels::testing;
namespace gpu = duet::kernels::testing::gpu;

namespace {

bool have_gpu() {
  std::string why;
  if (!gpu::available(&why)) {
    DUET_WARN_DEVICE_SKIP("no CUDA device (" << why << "); the [cuda] comparison did not run");
    return false;
  }
  static const bool logged = [] {
    WARN("running on " << gpu::describe_device());
    return true;
  }();
  (void)logged;
  return true;
}

TEST_CASE("GPU and host layer agree on shfl_xor and shfl_idx", "[kernels][cuda]") {
  if (!have_gpu()) {
    return;
  }
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::uniform_int_distribution<int> lane(0, 63);
  std::vector<float> in(64);
  std::vector<int> src(64);
  for (std::size_t t = 0; t < in.size(); ++t) {
    in[t] = uniform(rng);
    src[t] = lane(rng);
  }
  for (int mask = 0; mask < 32; ++mask) {
    std::vector<float> gpu_xor;
    std::vector<float> gpu_idx;
    gpu::shfl(in, src, mask, gpu_xor, gpu_idx);
    std::vector<float> host_xor(64);
    std::vector<float> host_idx(64);
    dt::launch_shfl(in.data(), src.data(), host_xor.data(), host_idx.data(), mask, 64, nullptr);
    INFO("mask " << mask);
    CHECK(gpu_xor == host_xor);
    CHECK(gpu_idx == host_idx);
  }
}

TEST_CASE("GPU and host layer agree on mma (bf16, f16, tf32)", "[kernels][cuda]") {
  if (!have_gpu()) {
    return;
  }
  std::mt19937 rng(12);
  for (const dt::InputType type :
       {dt::InputType::kBf16, dt::InputType::kF16, dt::InputType::kTf32}) {
    const int k = type == dt::InputType::kTf32 ? 8 : 16;
    const int kind = type == dt::InputType::kBf16 ? 0 : type == dt::InputType::kF16 ? 1 : 2;
    for (int trial = 0; trial < 20; ++trial) {
      const bool integers = trial % 2 == 0;
      const std::vector<float> a = dt::random_matrix(rng, type, 16, k, integers);
      const std::vector<float> b = dt::random_matrix(rng, type, k, 8, integers);
      const std::vector<float> c = dt::random_matrix(rng, dt::InputType::kTf32, 16, 8, integers);
      const dt::MmaFragments f = dt::make_fragments(type, a, b, c);
      std::vector<float> gpu_d;
      gpu::mma(kind, f.a, f.b, f.c, gpu_d);
      std::vector<float> host_d(32 * 4);
      dt::launch_mma(static_cast<dt::MmaKind>(kind), f.a.data(), f.b.data(), f.c.data(),
                     host_d.data(), nullptr);
      std::vector<double> magnitude;
      const std::vector<double> expected = dt::reference_matmul(a, b, c, 16, k, 8, &magnitude);
      const std::vector<float> gpu_matrix = dt::gather_accumulator(gpu_d);
      const std::vector<float> host_matrix = dt::gather_accumulator(host_d);
      for (std::size_t i = 0; i < gpu_matrix.size(); ++i) {
        INFO("kind " << kind << " trial " << trial << " element (" << i / 8 << "," << i % 8
                     << ") gpu " << gpu_matrix[i] << " host " << host_matrix[i] << " exact "
                     << expected[i]);
        if (integers) {
          CHECK(gpu_matrix[i] == host_matrix[i]);
        } else {
          // Both within float32 summation error of the float64 result (with slack for tensor
          // cores, which may truncate rather than round their partial sums).
          const double tolerance = (k + 1) * 0x1p-21 * magnitude[i];
          CHECK(std::fabs(gpu_matrix[i] - expected[i]) <= tolerance);
          CHECK(std::fabs(host_matrix[i] - expected[i]) <= tolerance);
        }
      }
    }
  }
}

template <int kMatrices, bool kTrans>
void compare_ldmatrix(std::mt19937& rng) {
  std::vector<uint16_t> rows(kMatrices * 64);
  std::iota(rows.begin(), rows.end(), static_cast<uint16_t>(0x2000));
  std::vector<int> row_of_lane(32);
  for (int lane = 0; lane < 32; ++lane) {
    row_of_lane[static_cast<std::size_t>(lane)] = lane % (8 * kMatrices);
  }
  std::shuffle(row_of_lane.begin(), row_of_lane.begin() + 8 * kMatrices, rng);
  std::vector<uint32_t> gpu_out;
  gpu::ldmatrix(kMatrices, kTrans, rows, row_of_lane, gpu_out);
  std::vector<uint32_t> host_out(32 * kMatrices);
  dt::launch_ldmatrix<kMatrices, kTrans>(rows.data(), row_of_lane.data(), host_out.data(), nullptr);
  INFO("x" << kMatrices << (kTrans ? ".trans" : ""));
  CHECK(gpu_out == host_out);
}

TEST_CASE("GPU and host layer agree on ldmatrix", "[kernels][cuda]") {
  if (!have_gpu()) {
    return;
  }
  std::mt19937 rng(13);
  compare_ldmatrix<1, false>(rng);
  compare_ldmatrix<2, false>(rng);
  compare_ldmatrix<4, false>(rng);
  compare_ldmatrix<2, true>(rng);
  compare_ldmatrix<4, true>(rng);
}

template <dt::MmaKind kKind, dt::LoadPlan kPlan>
void compare_ldmatrix_mma(std::mt19937& rng) {
  const dt::InputType type =
      kKind == dt::MmaKind::kBf16 ? dt::InputType::kBf16 : dt::InputType::kF16;
  const dt::LdmatrixMmaOperands o = dt::random_ldmatrix_mma_operands(rng, type, true);
  std::vector<float> gpu_d;
  gpu::ldmatrix_mma(static_cast<int>(kKind), static_cast<int>(kPlan), o.a_bits, o.b_bits,
                    o.bt_bits, o.c, gpu_d);
  std::vector<float> host_d(256);
  dt::launch_ldmatrix_mma<kKind, kPlan>(o.a_bits.data(), o.b_bits.data(), o.bt_bits.data(),
                                        o.c.data(), host_d.data(), nullptr);
  INFO("kind " << static_cast<int>(kKind) << " plan " << static_cast<int>(kPlan));
  CHECK(gpu_d == host_d);
}

TEST_CASE("GPU and host layer agree on ldmatrix feeding mma", "[kernels][cuda]") {
  if (!have_gpu()) {
    return;
  }
  std::mt19937 rng(14);
  compare_ldmatrix_mma<dt::MmaKind::kBf16, dt::LoadPlan::kX4AndX4Trans>(rng);
  compare_ldmatrix_mma<dt::MmaKind::kBf16, dt::LoadPlan::kX1AndX2>(rng);
  compare_ldmatrix_mma<dt::MmaKind::kBf16, dt::LoadPlan::kX2AndX2Trans>(rng);
  compare_ldmatrix_mma<dt::MmaKind::kBf16, dt::LoadPlan::kX4AndX1>(rng);
  compare_ldmatrix_mma<dt::MmaKind::kF16, dt::LoadPlan::kX4AndX4Trans>(rng);
  compare_ldmatrix_mma<dt::MmaKind::kF16, dt::LoadPlan::kX1AndX2>(rng);
  compare_ldmatrix_mma<dt::MmaKind::kF16, dt::LoadPlan::kX2AndX2Trans>(rng);
  compare_ldmatrix_mma<dt::MmaKind::kF16, dt::LoadPlan::kX4AndX1>(rng);
}

TEST_CASE("GPU and host layer agree on cp_async_16 zero-fill", "[kernels][cuda]") {
  if (!have_gpu()) {
    return;
  }
  std::vector<unsigned char> src(16 * 17);
  for (std::size_t i = 0; i < src.size(); ++i) {
    src[i] = static_cast<unsigned char>(i * 13 + 5);
  }
  std::vector<int> src_bytes(17);
  std::iota(src_bytes.begin(), src_bytes.end(), 0);
  std::vector<unsigned char> gpu_out;
  gpu::cp_async(src, src_bytes, gpu_out);
  std::vector<unsigned char> host_out(src.size());
  dt::launch_cp_async(src.data(), src_bytes.data(), host_out.data(), 17, nullptr);
  CHECK(gpu_out == host_out);
}

TEST_CASE("GPU and host layer agree bit for bit on every conversion", "[kernels][cuda]") {
  if (!have_gpu()) {
    return;
  }
  std::vector<float> in = dt::boundary_inputs(13);  // every tf32 boundary, and bf16's with it
  const std::vector<float> f16 = dt::f16_boundary_inputs();
  const std::vector<float> special = dt::special_inputs();
  in.insert(in.end(), f16.begin(), f16.end());
  in.insert(in.end(), special.begin(), special.end());
  std::vector<uint16_t> bits(in.size());
  for (std::size_t i = 0; i < bits.size(); ++i) {
    bits[i] = static_cast<uint16_t>(i);  // every 16-bit pattern, many times over
  }
  const gpu::Conversions device = gpu::convert(in, bits);

  const auto n = static_cast<int>(in.size());
  gpu::Conversions emulated;
  emulated.bf16.resize(in.size());
  emulated.f16.resize(in.size());
  emulated.tf32.resize(in.size());
  emulated.packed_bf16.resize(in.size());
  emulated.packed_f16.resize(in.size());
  emulated.from_bf16.resize(in.size());
  emulated.from_f16.resize(in.size());
  const dt::ConvertBuffers buffers{in.data(),
                                   bits.data(),
                                   emulated.bf16.data(),
                                   emulated.f16.data(),
                                   emulated.tf32.data(),
                                   emulated.packed_bf16.data(),
                                   emulated.packed_f16.data(),
                                   emulated.from_bf16.data(),
                                   emulated.from_f16.data()};
  dt::launch_convert(buffers, n, nullptr);

  const auto count_mismatches = [&](const char* what, auto& a, auto& b, auto bits_of) {
    int mismatches = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (bits_of(a[i]) != bits_of(b[i]) && ++mismatches <= 5) {
        UNSCOPED_INFO(what << " input 0x" << std::hex << dt::bits_of(in[i]) << " pattern 0x"
                           << bits[i] << ": gpu 0x" << bits_of(a[i]) << ", host 0x" << bits_of(b[i])
                           << std::dec);
      }
    }
    return mismatches;
  };
  const auto same = [](auto v) { return static_cast<uint32_t>(v); };
  const auto float_pattern = [](float v) { return dt::bits_of(v); };
  CHECK(count_mismatches("bf16", device.bf16, emulated.bf16, same) == 0);
  CHECK(count_mismatches("f16", device.f16, emulated.f16, same) == 0);
  CHECK(count_mismatches("tf32", device.tf32, emulated.tf32, same) == 0);
  CHECK(count_mismatches("pack_bf16x2", device.packed_bf16, emulated.packed_bf16, same) == 0);
  CHECK(count_mismatches("pack_f16x2", device.packed_f16, emulated.packed_f16, same) == 0);
  CHECK(count_mismatches("bf16->float", device.from_bf16, emulated.from_bf16, float_pattern) == 0);
  CHECK(count_mismatches("f16->float", device.from_f16, emulated.from_f16, float_pattern) == 0);
}

}  // namespace
