#pragma once
// Independent references for the fp conversions of kernels/intrinsics.h. They do not touch the
// bit tricks the emulation uses: each finds the two representable neighbours of x, measures both
// distances in float64, and applies the rounding rule; f16 also has GCC's _Float16 as an oracle.
// Inputs cover every 16-bit (or 19-bit tf32) pattern at, halfway between and one float ulp around
// its neighbours, so each rounding boundary is checked, plus NaN, infinities and subnormals.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

namespace duet::kernels::testing {

inline uint32_t bits_of(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof(u));
  return u;
}

inline float float_of(uint32_t u) {
  float x;
  std::memcpy(&x, &u, sizeof(x));
  return x;
}

// The value of a sign/exponent/mantissa pattern, treating the all-ones exponent as one more
// binade (so the pattern after the largest finite is 2^(emax+1): where overflow rounds to).
inline double decode(uint32_t sign, uint32_t exponent, uint32_t mantissa, int mantissa_bits,
                     int bias) {
  const double fraction = std::ldexp(static_cast<double>(mantissa), -mantissa_bits);
  const double magnitude = exponent == 0
                               ? std::ldexp(fraction, 1 - bias)
                               : std::ldexp(1.0 + fraction, static_cast<int>(exponent) - bias);
  return sign != 0 ? -magnitude : magnitude;
}

inline double bf16_value(uint16_t h) {
  return decode(h >> 15, (h >> 7) & 0xffu, h & 0x7fu, 7, 127);
}

// Round-to-nearest of finite x between two same-sign patterns toward and away from zero.
// `ties_even` chooses the even pattern on a tie, else the one away from zero.
inline uint32_t round_between(double x, uint32_t toward, uint32_t away, double toward_value,
                              double away_value, bool ties_even) {
  const double to_toward = std::fabs(x - toward_value);
  const double to_away = std::fabs(away_value - x);
  if (to_toward < to_away) {
    return toward;
  }
  if (to_away < to_toward) {
    return away;
  }
  return ties_even ? ((toward & 1u) == 0 ? toward : away) : away;
}

inline uint16_t reference_bf16(float x) {
  if (std::isnan(x)) {
    return 0x7fff;
  }
  const uint32_t u = bits_of(x);
  const auto toward = static_cast<uint16_t>(u >> 16);  // truncation: toward zero
  if ((u & 0xffffu) == 0 || std::isinf(x)) {
    return toward;
  }
  const auto away = static_cast<uint16_t>(toward + 1);
  return static_cast<uint16_t>(
      round_between(x, toward, away, bf16_value(toward), bf16_value(away), true));
}

inline uint32_t reference_tf32(float x) {
  const uint32_t u = bits_of(x);
  const uint32_t toward = u & 0xffffe000u;
  if ((u & 0x1fffu) == 0 || !std::isfinite(x)) {
    return toward;
  }
  const uint32_t away = toward + 0x2000u;
  const auto value = [](uint32_t p) {
    return decode(p >> 31, (p >> 23) & 0xffu, p & 0x7fffffu, 23, 127);
  };
  return round_between(x, toward, away, value(toward), value(away), false);
}

// GCC's _Float16 conversions are IEEE round-to-nearest-even with subnormals and overflow.
inline uint16_t reference_f16(float x) {
  if (std::isnan(x)) {
    return 0x7fff;
  }
  const auto h = static_cast<_Float16>(x);
  uint16_t bits;
  std::memcpy(&bits, &h, sizeof(bits));
  return bits;
}

inline float reference_f16_to_float(uint16_t bits) {
  _Float16 h;
  std::memcpy(&h, &bits, sizeof(h));
  return static_cast<float>(h);
}

// Floats around every rounding boundary of a `kept_bits`-bit truncation of float32 (16 for
// bf16/f16 patterns is not enough for f16, see f16_boundary_inputs): for each kept pattern p,
// the exact value, the midpoint to the next pattern, and one float ulp either side of both.
inline std::vector<float> boundary_inputs(int dropped_bits) {
  std::vector<float> inputs;
  const uint32_t patterns = 1u << (32 - dropped_bits);
  const uint32_t half = 1u << (dropped_bits - 1);
  inputs.reserve(static_cast<std::size_t>(patterns) * 5);
  for (uint32_t p = 0; p < patterns; ++p) {
    const uint32_t base = p << dropped_bits;
    for (const uint32_t low : {0u, 1u, half - 1u, half, half + 1u}) {
      inputs.push_back(float_of(base | low));
    }
  }
  return inputs;
}

// Floats at, halfway between, and one float ulp around every pair of neighbouring f16 values
// (f16's boundaries do not fall on fixed float bit positions for subnormals).
inline std::vector<float> f16_boundary_inputs() {
  std::vector<float> inputs;
  for (uint32_t h = 0; h < 0x7c00u; ++h) {
    for (const uint32_t sign : {0u, 0x8000u}) {
      const float value = reference_f16_to_float(static_cast<uint16_t>(h | sign));
      const double next =
          h + 1 == 0x7c00u ? 65536.0 : reference_f16_to_float(static_cast<uint16_t>(h + 1));
      const auto midpoint = static_cast<float>((std::fabs(value) + next) / 2.0);  // exact in float
      const float signed_mid = sign != 0 ? -midpoint : midpoint;
      inputs.push_back(value);
      inputs.push_back(std::nextafter(value, 0.0f));
      inputs.push_back(signed_mid);
      inputs.push_back(std::nextafter(signed_mid, 0.0f));
      inputs.push_back(std::nextafter(signed_mid, signed_mid * 2.0f));
    }
  }
  return inputs;
}

inline std::vector<float> special_inputs() {
  std::vector<float> inputs = {0.0f,
                               -0.0f,
                               1.0f,
                               -1.0f,
                               0.1f,
                               1.0f / 3.0f,
                               65504.0f,
                               65519.99f,
                               65520.0f,
                               65536.0f,
                               -65520.0f,
                               1e10f,
                               -1e30f,
                               std::ldexp(1.0f, -24),
                               std::ldexp(1.0f, -25),
                               std::ldexp(3.0f, -26),
                               std::ldexp(1.0f, -14),
                               std::ldexp(1.0f, -126),
                               std::ldexp(1.0f, -149),
                               std::numeric_limits<float>::max(),
                               -std::numeric_limits<float>::max(),
                               std::numeric_limits<float>::infinity(),
                               -std::numeric_limits<float>::infinity(),
                               std::numeric_limits<float>::quiet_NaN(),
                               -std::numeric_limits<float>::quiet_NaN(),
                               float_of(0x7f800001u),
                               float_of(0xffc01234u),
                               float_of(0x7f7f8000u),
                               float_of(0x3f808000u),
                               float_of(0x3f818000u),
                               float_of(0x00008000u),
                               float_of(0x00018000u),
                               float_of(0x3f801000u),
                               float_of(0xbf801000u)};
  std::mt19937 rng(5);
  std::uniform_int_distribution<uint32_t> any;
  for (int i = 0; i < 20000; ++i) {
    inputs.push_back(float_of(any(rng)));
  }
  return inputs;
}

}  // namespace duet::kernels::testing
