// The fp conversions of kernels/intrinsics.h, bit-exact against independent references at every
// rounding boundary, with NaN, infinities, subnormals and overflow.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "conversion_reference.h"
#include "kernels/device.h"
#include "kernels/intrinsics.h"

namespace dk = duet::kernels;
namespace dt = duet::kernels::testing;

namespace {

// Counts and reports (the first few) inputs where `actual` and `expected` disagree.
template <class Actual, class Expected>
void check_all(const char* what, const std::vector<float>& inputs, Actual actual,
               Expected expected) {
  int mismatches = 0;
  for (const float x : inputs) {
    const auto got = actual(x);
    const auto want = expected(x);
    if (got != want) {
      if (++mismatches <= 5) {
        UNSCOPED_INFO(what << "(bits 0x" << std::hex << dt::bits_of(x) << ") = 0x" << got
                           << ", expected 0x" << want << std::dec);
      }
    }
  }
  INFO(what << ": " << inputs.size() << " inputs");
  CHECK(mismatches == 0);
}

TEST_CASE("float_to_bf16_bits rounds to nearest even at every boundary", "[kernels]") {
  std::vector<float> inputs = dt::boundary_inputs(16);
  const std::vector<float> special = dt::special_inputs();
  inputs.insert(inputs.end(), special.begin(), special.end());
  check_all(
      "float_to_bf16_bits", inputs, [](float x) { return dk::float_to_bf16_bits(x); },
      [](float x) { return dt::reference_bf16(x); });

  CHECK(dk::float_to_bf16_bits(1.0f) == 0x3f80);
  CHECK(dk::float_to_bf16_bits(-0.0f) == 0x8000);
  CHECK(dk::float_to_bf16_bits(dt::float_of(0x3f808000u)) == 0x3f80);  // tie, even below
  CHECK(dk::float_to_bf16_bits(dt::float_of(0x3f818000u)) == 0x3f82);  // tie, even above
  CHECK(dk::float_to_bf16_bits(dt::float_of(0x7f7f8000u)) == 0x7f80);  // tie past max: inf
  CHECK(dk::float_to_bf16_bits(std::numeric_limits<float>::max()) == 0x7f80);
  CHECK(dk::float_to_bf16_bits(-std::numeric_limits<float>::infinity()) == 0xff80);
  CHECK(dk::float_to_bf16_bits(dt::float_of(0x00018000u)) == 0x0002);  // subnormal tie
  CHECK(dk::float_to_bf16_bits(-std::numeric_limits<float>::quiet_NaN()) == 0x7fff);
  CHECK(dk::float_to_bf16_bits(dt::float_of(0x7f800001u)) == 0x7fff);
}

TEST_CASE("float_to_f16_bits rounds to nearest even at every boundary", "[kernels]") {
  std::vector<float> inputs = dt::f16_boundary_inputs();
  const std::vector<float> special = dt::special_inputs();
  inputs.insert(inputs.end(), special.begin(), special.end());
  check_all(
      "float_to_f16_bits", inputs, [](float x) { return dk::float_to_f16_bits(x); },
      [](float x) { return dt::reference_f16(x); });

  CHECK(dk::float_to_f16_bits(65504.0f) == 0x7bff);
  CHECK(dk::float_to_f16_bits(dt::float_of(0x477fefffu)) == 0x7bff);  // just below 65520
  CHECK(dk::float_to_f16_bits(65520.0f) == 0x7c00);                   // tie past max: inf
  CHECK(dk::float_to_f16_bits(-1e10f) == 0xfc00);
  CHECK(dk::float_to_f16_bits(std::ldexp(1.0f, -24)) == 0x0001);  // smallest subnormal
  CHECK(dk::float_to_f16_bits(std::ldexp(1.0f, -25)) == 0x0000);  // tie with zero: even
  CHECK(dk::float_to_f16_bits(dt::float_of(0x33000001u)) == 0x0001);
  CHECK(dk::float_to_f16_bits(std::ldexp(3.0f, -26)) == 0x0001);  // 0.75 units
  CHECK(dk::float_to_f16_bits(std::ldexp(3.0f, -25)) == 0x0002);  // 1.5 units: tie, even
  CHECK(dk::float_to_f16_bits(std::ldexp(1.0f, -14)) == 0x0400);  // smallest normal
  CHECK(dk::float_to_f16_bits(std::ldexp(1023.0f, -24) + std::ldexp(1.0f, -25)) == 0x0400);
  CHECK(dk::float_to_f16_bits(0.1f) == 0x2e66);
  CHECK(dk::float_to_f16_bits(std::numeric_limits<float>::quiet_NaN()) == 0x7fff);
}

TEST_CASE("to_tf32 rounds to nearest with ties away from zero, as cvt.rna.tf32.f32", "[kernels]") {
  std::vector<float> inputs = dt::boundary_inputs(13);
  const std::vector<float> special = dt::special_inputs();
  inputs.insert(inputs.end(), special.begin(), special.end());
  std::vector<float> finite;
  for (const float x : inputs) {
    if (std::isfinite(x)) {
      finite.push_back(x);
    }
  }
  check_all(
      "to_tf32", finite, [](float x) { return dk::to_tf32(x); },
      [](float x) { return dt::reference_tf32(x); });

  CHECK(dk::to_tf32(1.0f) == 0x3f800000u);
  CHECK(dk::to_tf32(dt::float_of(0x3f801000u)) == 0x3f802000u);  // tie: away from zero
  CHECK(dk::to_tf32(dt::float_of(0xbf801000u)) == 0xbf802000u);
  CHECK(dk::to_tf32(dt::float_of(0x3f800fffu)) == 0x3f800000u);
  CHECK(dk::to_tf32(dt::float_of(0x3f803000u)) == 0x3f804000u);          // tie on an odd pattern
  CHECK(dk::to_tf32(std::numeric_limits<float>::max()) == 0x7f800000u);  // overflow: inf
  CHECK(dk::to_tf32(std::ldexp(1.0f, -149)) == 0x00000000u);             // subnormals too
  CHECK(dk::to_tf32(dt::float_of(0x00001000u)) == 0x00002000u);
  // Infinity and NaN skip the rounding add and only lose their low 13 bits (sm_80+ SASS).
  CHECK(dk::to_tf32(-std::numeric_limits<float>::infinity()) == 0xff800000u);
  CHECK(dk::to_tf32(dt::float_of(0x7fc00000u)) == 0x7fc00000u);
  CHECK(dk::to_tf32(dt::float_of(0xffc01234u)) == 0xffc00000u);
  CHECK(dk::to_tf32(dt::float_of(0x7f800001u)) == 0x7f800000u);
}

TEST_CASE("bf16 and f16 bits widen to float exactly", "[kernels]") {
  int mismatches = 0;
  for (uint32_t h = 0; h <= 0xffffu; ++h) {
    const auto bits = static_cast<uint16_t>(h);
    const float from_bf16 = dk::bf16_bits_to_float(bits);
    const float from_f16 = dk::f16_bits_to_float(bits);
    const bool bf16_nan = (h & 0x7f80u) == 0x7f80u && (h & 0x7fu) != 0;
    const bool f16_nan = (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0;
    // bf16 is float's upper half, NaN payload included.
    bool ok = dt::bits_of(from_bf16) == h << 16;
    if (!bf16_nan && (h & 0x7f80u) != 0x7f80u) {
      ok = ok && static_cast<double>(from_bf16) == dt::bf16_value(bits);
    }
    // f16: the _Float16 value; NaN becomes the canonical 0x7fffffff (NVIDIA's emulation).
    ok = ok && (f16_nan ? dt::bits_of(from_f16) == 0x7fffffffu
                        : dt::bits_of(from_f16) == dt::bits_of(dt::reference_f16_to_float(bits)));
    if (!ok && ++mismatches <= 5) {
      UNSCOPED_INFO("pattern 0x" << std::hex << h << ": bf16 -> 0x" << dt::bits_of(from_bf16)
                                 << ", f16 -> 0x" << dt::bits_of(from_f16) << std::dec);
    }
  }
  CHECK(mismatches == 0);
  CHECK(dk::f16_bits_to_float(0x0001) == std::ldexp(1.0f, -24));
  CHECK(dk::f16_bits_to_float(0x8400) == -std::ldexp(1.0f, -14));
  CHECK(dk::f16_bits_to_float(0xfc00) == -std::numeric_limits<float>::infinity());
}

TEST_CASE("pack_bf16x2 and pack_f16x2 put lo in bits 0..15", "[kernels]") {
  CHECK(dk::pack_bf16x2(1.0f, -2.0f) == 0xc0003f80u);
  CHECK(dk::pack_f16x2(1.0f, -2.0f) == 0xc0003c00u);
  CHECK(dk::pack_bf16x2(std::numeric_limits<float>::quiet_NaN(), 0.0f) == 0x00007fffu);
  CHECK(dk::pack_f16x2(0.0f, 65520.0f) == 0x7c000000u);
}

}  // namespace
