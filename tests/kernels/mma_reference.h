#pragma once
// Test helpers shared by the host and [cuda] intrinsic tests: random operands exactly
// representable in the MMA input types, fragments built with the independent layout tables of
// fragment_tables.h, and a float64 matmul reference.
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "fragment_tables.h"
#include "kernels/device.h"
#include "kernels/intrinsics.h"

namespace duet::kernels::testing {

enum class InputType { kBf16, kF16, kTf32 };

// Rounds `x` to the input type (the value the MMA will see).
inline float round_to(InputType type, float x) {
  switch (type) {
    case InputType::kBf16:
      return bf16_bits_to_float(float_to_bf16_bits(x));
    case InputType::kF16:
      return f16_bits_to_float(float_to_f16_bits(x));
    case InputType::kTf32:
      return bits_float(to_tf32(x));
  }
  return x;
}

inline uint16_t to_bits16(InputType type, float x) {
  return type == InputType::kBf16 ? float_to_bf16_bits(x) : float_to_f16_bits(x);
}

// rows x cols values, row-major: uniform in [-1, 1] rounded to the type, or small integers in
// [-4, 4] (every product and sum then exact in float32).
inline std::vector<float> random_matrix(std::mt19937& rng, InputType type, int rows, int cols,
                                        bool small_integers) {
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::uniform_int_distribution<int> integer(-4, 4);
  std::vector<float> m(static_cast<std::size_t>(rows * cols));
  for (float& v : m) {
    v = small_integers ? static_cast<float>(integer(rng)) : round_to(type, uniform(rng));
  }
  return m;
}

// A 16x16x16 ldmatrix-feeding-mma problem in row-major shared-memory form: A, B, C as values,
// A and B as 16-bit patterns of `type`, and B transposed (for the .trans load plans).
struct LdmatrixMmaOperands {
  std::vector<float> a, b, c;
  std::vector<uint16_t> a_bits, b_bits, bt_bits;
};

inline LdmatrixMmaOperands random_ldmatrix_mma_operands(std::mt19937& rng, InputType type,
                                                         bool small_integers) {
  LdmatrixMmaOperands o;
  o.a = random_matrix(rng, type, 16, 16, small_integers);
  o.b = random_matrix(rng, type, 16, 16, small_integers);
  o.c = random_matrix(rng, InputType::kTf32, 16, 16, small_integers);
  o.a_bits.resize(256);
  o.b_bits.resize(256);
  o.bt_bits.resize(256);
  for (std::size_t i = 0; i < 16; ++i) {
    for (std::size_t j = 0; j < 16; ++j) {
      o.a_bits[i * 16 + j] = to_bits16(type, o.a[i * 16 + j]);
      o.b_bits[i * 16 + j] = to_bits16(type, o.b[i * 16 + j]);
      o.bt_bits[j * 16 + i] = o.b_bits[i * 16 + j];
    }
  }
  return o;
}

// D = A (m x k) * B (k x n) + C (m x n), all row-major, in float64; `magnitude` gets
// sum_k |a b| + |c| per element, the scale of a float32 summation's error.
inline std::vector<double> reference_matmul(const std::vector<float>& a,
                                            const std::vector<float>& b,
                                            const std::vector<float>& c, int m, int k, int n,
                                            std::vector<double>* magnitude) {
  std::vector<double> d(static_cast<std::size_t>(m * n));
  if (magnitude != nullptr) {
    magnitude->assign(d.size(), 0.0);
  }
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      double sum = c[static_cast<std::size_t>(i * n + j)];
      double size = std::fabs(sum);
      for (int p = 0; p < k; ++p) {
        const double product = static_cast<double>(a[static_cast<std::size_t>(i * k + p)]) *
                               b[static_cast<std::size_t>(p * n + j)];
        sum += product;
        size += std::fabs(product);
      }
      d[static_cast<std::size_t>(i * n + j)] = sum;
      if (magnitude != nullptr) {
        (*magnitude)[static_cast<std::size_t>(i * n + j)] = size;
      }
    }
  }
  return d;
}

// Per-lane fragments of one 16x8xK MMA, laid out as the mma_kernel of intrinsic_test_kernels.cuh
// reads them: a [32][4], b [32][2], c [32][4] (uint32 registers / floats).
struct MmaFragments {
  std::vector<uint32_t> a = std::vector<uint32_t>(32 * 4, 0);
  std::vector<uint32_t> b = std::vector<uint32_t>(32 * 2, 0);
  std::vector<float> c = std::vector<float>(32 * 4, 0.0f);
};

// a is 16 x K, b is K x 8, c is 16 x 8 (row-major); K is 16 (bf16, f16) or 8 (tf32).
inline MmaFragments make_fragments(InputType type, const std::vector<float>& a,
                                   const std::vector<float>& b, const std::vector<float>& c) {
  MmaFragments f;
  const int k_size = type == InputType::kTf32 ? 8 : 16;
  for (int row = 0; row < 16; ++row) {
    for (int k = 0; k < k_size; ++k) {
      const float v = a[static_cast<std::size_t>(row * k_size + k)];
      if (type == InputType::kTf32) {
        const FragmentSlot s = m16n8k8_tf32_a_slot(row, k);
        f.a[static_cast<std::size_t>(s.lane * 4 + s.element)] = to_tf32(v);
      } else {
        put_half(f.a, 4, m16n8k16_a_slot(row, k), to_bits16(type, v));
      }
    }
  }
  for (int k = 0; k < k_size; ++k) {
    for (int n = 0; n < 8; ++n) {
      const float v = b[static_cast<std::size_t>(k * 8 + n)];
      if (type == InputType::kTf32) {
        const FragmentSlot s = m16n8k8_tf32_b_slot(k, n);
        f.b[static_cast<std::size_t>(s.lane * 2 + s.element)] = to_tf32(v);
      } else {
        put_half(f.b, 2, m16n8k16_b_slot(k, n), to_bits16(type, v));
      }
    }
  }
  for (int row = 0; row < 16; ++row) {
    for (int n = 0; n < 8; ++n) {
      const FragmentSlot s = accumulator_slot(row, n);
      f.c[static_cast<std::size_t>(s.lane * 4 + s.element)] =
          c[static_cast<std::size_t>(row * 8 + n)];
    }
  }
  return f;
}

// The 16 x 8 row-major D from per-lane d [32][4].
inline std::vector<float> gather_accumulator(const std::vector<float>& d) {
  std::vector<float> out(16 * 8);
  for (int row = 0; row < 16; ++row) {
    for (int n = 0; n < 8; ++n) {
      const FragmentSlot s = accumulator_slot(row, n);
      out[static_cast<std::size_t>(row * 8 + n)] =
          d[static_cast<std::size_t>(s.lane * 4 + s.element)];
    }
  }
  return out;
}

}  // namespace duet::kernels::testing
