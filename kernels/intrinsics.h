#pragma once
// Every warp-level and special intrinsic duet's kernels use, each with two branches:
//   - CUDA (DUET_HOST_BUILD == 0): CUDA intrinsics or inline PTX;
//   - host (DUET_HOST_BUILD == 1): an emulation on the host execution layer, written from the
//     fragment layouts and rounding rules of NVIDIA's PTX ISA.
// Kernels use only these for warp collectives, tensor-core MMA, shared-memory access and fp
// conversions, so the same kernel source runs on both.
//
// Host-emulation semantics (tests: tests/kernels/):
//   - mma: products are exact (bf16/f16/tf32 products fit float32), summed in float32 in k order,
//     then added to c. Tensor cores may round differently, so compare against them with tolerances.
//     tf32 operands: the low 13 bits of each register are ignored, as by the hardware.
//   - every collective (shfl, mma, ldmatrix, warp_sync) needs all lanes of the warp at the same
//     kind of collective; a lane elsewhere (another collective, block_sync, exited) is an error
//     naming the warp, the lanes and what each waits at.
//   - cp_async_16 captures the source at issue; its bytes land in shared memory only when a
//     cp_async_wait<N> retires its commit group (all but the N most recent committed groups of the
//     thread), so a kernel that reads before waiting reads the 0xFF poison (NaN).
//   - shared memory accessed through smem_load/smem_store, ldmatrix and cp_async_16 is race-
//     checked, bounds-checked against dynamic shared memory and alignment-checked.
//   - atomic_add (beyond the core set: global accumulation) is a plain read-modify-write, atomic
//     because one simulated thread runs at a time.
//   - conversions are bit-exact with the hardware: round to nearest even (f16, bf16), round to
//     nearest with ties away from zero (tf32); NaN becomes the canonical 0x7FFF (f16, bf16) as in
//     NVIDIA's own host emulation; tf32 keeps NaN/inf bits and only clears the low 13 bits, as
//     cvt.rna.tf32.f32 compiles to on sm_80+.
#include <cstdint>
#include <cstring>
#include <string>

#include "kernels/device.h"

namespace duet::kernels {

#if !DUET_HOST_BUILD

// ---- CUDA ---------------------------------------------------------------------------------------

DUET_DEVICE int lane_id() { return static_cast<int>(threadIdx.x & 31u); }
DUET_DEVICE int warp_id() { return static_cast<int>(threadIdx.x >> 5); }

DUET_DEVICE void block_sync() { __syncthreads(); }
DUET_DEVICE void warp_sync() { __syncwarp(); }

DUET_DEVICE float shfl_xor(float v, int lane_mask) {
  return __shfl_xor_sync(0xffffffffu, v, lane_mask);
}
DUET_DEVICE float shfl_idx(float v, int src_lane) { return __shfl_sync(0xffffffffu, v, src_lane); }

DUET_DEVICE void mma_m16n8k16_bf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                                   const float (&c)[4]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]),
        "f"(c[2]), "f"(c[3]));
}

DUET_DEVICE void mma_m16n8k16_f16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                                  const float (&c)[4]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]),
        "f"(c[2]), "f"(c[3]));
}

DUET_DEVICE void mma_m16n8k8_tf32(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                                  const float (&c)[4]) {
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]),
        "f"(c[2]), "f"(c[3]));
}

namespace detail {
DUET_DEVICE unsigned shared_address(const void* p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}
}  // namespace detail

DUET_DEVICE void ldmatrix_x1(uint32_t (&r)[1], const void* smem_row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];\n"
               : "=r"(r[0])
               : "r"(detail::shared_address(smem_row)));
}
DUET_DEVICE void ldmatrix_x2(uint32_t (&r)[2], const void* smem_row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(detail::shared_address(smem_row)));
}
DUET_DEVICE void ldmatrix_x4(uint32_t (&r)[4], const void* smem_row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(detail::shared_address(smem_row)));
}
DUET_DEVICE void ldmatrix_x2_trans(uint32_t (&r)[2], const void* smem_row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(detail::shared_address(smem_row)));
}
DUET_DEVICE void ldmatrix_x4_trans(uint32_t (&r)[4], const void* smem_row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(detail::shared_address(smem_row)));
}

// The memory clobbers keep the compiler from moving shared-memory loads across the copy's start
// and completion.
DUET_DEVICE void cp_async_16(void* smem_dst, const void* gmem_src, int src_bytes) {
  asm volatile(
      "cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(detail::shared_address(smem_dst)),
      "l"(gmem_src), "r"(src_bytes)
      : "memory");
}
DUET_DEVICE void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
DUET_DEVICE void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

template <class T>
DUET_DEVICE T smem_load(const T* p) {
  return *p;
}
template <class T>
DUET_DEVICE void smem_store(T* p, T value) {
  *p = value;
}

// atomicAdd on global or shared memory; returns the old value.
DUET_DEVICE float atomic_add(float* address, float value) { return atomicAdd(address, value); }
DUET_DEVICE int atomic_add(int* address, int value) { return atomicAdd(address, value); }
DUET_DEVICE unsigned atomic_add(unsigned* address, unsigned value) {
  return atomicAdd(address, value);
}

// cvt.rn.bf16x2.f32 d, a, b puts a in the upper half: `hi` goes first.
DUET_DEVICE uint32_t pack_bf16x2(float lo, float hi) {
  uint32_t d;
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(d) : "f"(hi), "f"(lo));
  return d;
}
DUET_DEVICE uint32_t pack_f16x2(float lo, float hi) {
  uint32_t d;
  asm("cvt.rn.f16x2.f32 %0, %1, %2;\n" : "=r"(d) : "f"(hi), "f"(lo));
  return d;
}
DUET_DEVICE uint32_t to_tf32(float x) {
  uint32_t d;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(d) : "f"(x));
  return d;
}
DUET_DEVICE float bf16_bits_to_float(uint16_t bits) {
  return __uint_as_float(static_cast<uint32_t>(bits) << 16);
}
DUET_DEVICE float f16_bits_to_float(uint16_t bits) {
  float f;
  asm("cvt.f32.f16 %0, %1;\n" : "=f"(f) : "h"(bits));
  return f;
}
DUET_DEVICE uint16_t float_to_bf16_bits(float x) {
  uint16_t h;
  asm("cvt.rn.bf16.f32 %0, %1;\n" : "=h"(h) : "f"(x));
  return h;
}
DUET_DEVICE uint16_t float_to_f16_bits(float x) {
  uint16_t h;
  asm("cvt.rn.f16.f32 %0, %1;\n" : "=h"(h) : "f"(x));
  return h;
}

#else  // DUET_HOST_BUILD

// ---- host emulation -----------------------------------------------------------------------------

DUET_DEVICE int lane_id() { return host::lane_id(); }
DUET_DEVICE int warp_id() { return host::warp_id(); }

DUET_DEVICE void block_sync() { host::block_sync(); }

// ---- conversions (bit-level, exact) ----

namespace detail {

inline uint32_t float_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof(u));
  return u;
}
inline float bits_float(uint32_t u) {
  float x;
  std::memcpy(&x, &u, sizeof(x));
  return x;
}

}  // namespace detail

DUET_DEVICE float bf16_bits_to_float(uint16_t bits) {
  return detail::bits_float(static_cast<uint32_t>(bits) << 16);
}

DUET_DEVICE uint16_t float_to_bf16_bits(float x) {
  const uint32_t u = detail::float_bits(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) {
    return 0x7fffu;  // canonical NaN
  }
  // Round to nearest even on the 16 dropped bits; a carry rounds up into the exponent, which
  // also turns values past bf16's largest finite into infinity.
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

DUET_DEVICE float f16_bits_to_float(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  const uint32_t exponent = (bits >> 10) & 0x1fu;
  const uint32_t mantissa = bits & 0x3ffu;
  if (exponent == 0x1fu) {
    // Infinity keeps its sign; NaN becomes the canonical float NaN (NVIDIA's emulation does too).
    return detail::bits_float(mantissa == 0 ? sign | 0x7f800000u : 0x7fffffffu);
  }
  if (exponent == 0) {
    // Zero or subnormal: mantissa * 2^-24, exact in float.
    const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
    return sign != 0 ? -magnitude : magnitude;
  }
  return detail::bits_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

DUET_DEVICE uint16_t float_to_f16_bits(float x) {
  const uint32_t u = detail::float_bits(x);
  const auto sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t magnitude = u & 0x7fffffffu;
  if (magnitude > 0x7f800000u) {
    return 0x7fffu;  // canonical NaN
  }
  if (magnitude >= 0x477ff000u) {
    return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65520 rounds to infinity (and inf stays)
  }
  if (magnitude >= 0x38800000u) {
    // Normal in f16: rebias the exponent (127 -> 15) and round the 13 dropped bits to even; a
    // carry out of the mantissa correctly bumps the exponent.
    const uint32_t kept = (magnitude - 0x38000000u) >> 13;
    const uint32_t dropped = magnitude & 0x1fffu;
    const uint32_t round_up = dropped > 0x1000u || (dropped == 0x1000u && (kept & 1u) != 0);
    return static_cast<uint16_t>(sign | (kept + round_up));
  }
  if (magnitude <= 0x33000000u) {
    return sign;  // at most 2^-25, half the smallest subnormal: rounds (ties to even) to zero
  }
  // Subnormal in f16: the value in units of 2^-24 is the 24-bit significand shifted right by
  // (126 - exponent), with round to nearest even on the shifted-out bits.
  const uint32_t exponent = magnitude >> 23;
  const uint32_t significand = (magnitude & 0x7fffffu) | 0x800000u;
  const uint32_t shift = 126u - exponent;
  const uint32_t kept = significand >> shift;
  const uint32_t dropped = significand & ((1u << shift) - 1u);
  const uint32_t half = 1u << (shift - 1u);
  const uint32_t round_up = dropped > half || (dropped == half && (kept & 1u) != 0);
  return static_cast<uint16_t>(sign | (kept + round_up));
}

DUET_DEVICE uint32_t pack_bf16x2(float lo, float hi) {
  return static_cast<uint32_t>(float_to_bf16_bits(lo)) |
         (static_cast<uint32_t>(float_to_bf16_bits(hi)) << 16);
}

DUET_DEVICE uint32_t pack_f16x2(float lo, float hi) {
  return static_cast<uint32_t>(float_to_f16_bits(lo)) |
         (static_cast<uint32_t>(float_to_f16_bits(hi)) << 16);
}

// cvt.rna.tf32.f32: on sm_80+ it compiles to "add 0x1000 unless |x| is inf or NaN, then clear
// the low 13 bits": ties away from zero, overflow to infinity.
DUET_DEVICE uint32_t to_tf32(float x) {
  uint32_t u = detail::float_bits(x);
  if ((u & 0x7fffffffu) < 0x7f800000u) {
    u += 0x1000u;
  }
  return u & 0xffffe000u;
}

// ---- warp collectives ----

namespace detail {

constexpr int kLanes = 32;

struct ShflOperand {
  float value;
  int lane_arg;
  float result;
};

template <bool kXor>
void shfl_complete(void* const* lanes, int warp_threads) {
  for (int lane = 0; lane < warp_threads; ++lane) {
    const auto& me = *static_cast<const ShflOperand*>(lanes[lane]);
    if (kXor && (me.lane_arg < 0 || me.lane_arg >= kLanes)) {
      host::kernel_error("shfl_xor with lane_mask " + std::to_string(me.lane_arg) + " (lane " +
                         std::to_string(lane) + "); it must be in 0..31");
    }
    const int source = kXor ? lane ^ me.lane_arg : me.lane_arg & (kLanes - 1);
    if (source >= warp_threads) {
      host::kernel_error(std::string(kXor ? "shfl_xor" : "shfl_idx") + ": lane " +
                         std::to_string(lane) + " reads lane " + std::to_string(source) +
                         ", which this partial warp of " + std::to_string(warp_threads) +
                         " threads lacks");
    }
  }
  // Read every value before writing any result: operands and results share the lanes' structs.
  float values[kLanes];
  for (int lane = 0; lane < warp_threads; ++lane) {
    values[lane] = static_cast<ShflOperand*>(lanes[lane])->value;
  }
  for (int lane = 0; lane < warp_threads; ++lane) {
    auto& me = *static_cast<ShflOperand*>(lanes[lane]);
    me.result = values[kXor ? lane ^ me.lane_arg : me.lane_arg & (kLanes - 1)];
  }
}

inline void warp_sync_complete(void* const*, int) {}

inline void require_full_warp(const char* op, int warp_threads) {
  if (warp_threads != kLanes) {
    host::kernel_error(std::string(op) + " needs all 32 lanes of a warp; this warp has " +
                       std::to_string(warp_threads) + " threads (blockDim not a multiple of 32)");
  }
}

struct MmaOperand {
  const uint32_t* a;
  const uint32_t* b;
  const float* c;
  float* d;
};

inline uint16_t half_of(uint32_t reg, int half) {
  return static_cast<uint16_t>(half == 0 ? reg & 0xffffu : reg >> 16);
}

// D[16][8] = A[16][K] * B[K][8] + C, products exact, summed in float32 in k order, then + C.
template <int K>
void mma_compute(const float (&a)[16][K], const float (&b)[K][8], const float (&c)[16][8],
                 float (&d)[16][8]) {
  for (int m = 0; m < 16; ++m) {
    for (int n = 0; n < 8; ++n) {
      float sum = 0.0f;
      for (int k = 0; k < K; ++k) {
        sum += a[m][k] * b[k][n];
      }
      d[m][n] = sum + c[m][n];
    }
  }
}

// C/D fragment (PTX ISA, "Matrix Fragments for mma.m16n8k16 / m16n8k8", accumulators):
//   c_i: row = groupID + 8 * (i >= 2), col = threadID_in_group * 2 + (i & 1).
inline void gather_c(void* const* lanes, float (&c)[16][8]) {
  for (int lane = 0; lane < kLanes; ++lane) {
    const auto& op = *static_cast<const MmaOperand*>(lanes[lane]);
    const int group = lane >> 2;
    const int thread_in_group = lane & 3;
    for (int i = 0; i < 4; ++i) {
      c[group + 8 * (i >> 1)][thread_in_group * 2 + (i & 1)] = op.c[i];
    }
  }
}
inline void scatter_d(void* const* lanes, const float (&d)[16][8]) {
  for (int lane = 0; lane < kLanes; ++lane) {
    const auto& op = *static_cast<const MmaOperand*>(lanes[lane]);
    const int group = lane >> 2;
    const int thread_in_group = lane & 3;
    for (int i = 0; i < 4; ++i) {
      op.d[i] = d[group + 8 * (i >> 1)][thread_in_group * 2 + (i & 1)];
    }
  }
}

// mma.m16n8k16 with .f16/.bf16 inputs (PTX ISA fragment layouts):
//   A a_i (i = 0..7, two per register, low half first):
//     row = groupID + 8 * ((i >> 1) & 1), col = threadID_in_group * 2 + (i & 1) + 8 * (i >= 4)
//   B b_i (i = 0..3): row = threadID_in_group * 2 + (i & 1) + 8 * (i >= 2), col = groupID
template <float (*kToFloat)(uint16_t)>
void mma_m16n8k16_complete(void* const* lanes, int warp_threads) {
  require_full_warp("mma_m16n8k16", warp_threads);
  float a[16][16];
  float b[16][8];
  float c[16][8];
  float d[16][8];
  for (int lane = 0; lane < kLanes; ++lane) {
    const auto& op = *static_cast<const MmaOperand*>(lanes[lane]);
    const int group = lane >> 2;
    const int thread_in_group = lane & 3;
    for (int i = 0; i < 8; ++i) {
      const int row = group + 8 * ((i >> 1) & 1);
      const int col = thread_in_group * 2 + (i & 1) + 8 * (i >> 2);
      a[row][col] = kToFloat(half_of(op.a[i >> 1], i & 1));
    }
    for (int i = 0; i < 4; ++i) {
      const int row = thread_in_group * 2 + (i & 1) + 8 * (i >> 1);
      b[row][group] = kToFloat(half_of(op.b[i >> 1], i & 1));
    }
  }
  gather_c(lanes, c);
  mma_compute(a, b, c, d);
  scatter_d(lanes, d);
}

// mma.m16n8k8 with .tf32 inputs (PTX ISA fragment layouts), one element per register:
//   A a_i (i = 0..3): row = groupID + 8 * (i & 1), col = threadID_in_group + 4 * (i >= 2)
//   B b_i (i = 0..1): row = threadID_in_group + 4 * i, col = groupID
inline float tf32_value(uint32_t reg) { return bits_float(reg & 0xffffe000u); }

inline void mma_m16n8k8_tf32_complete(void* const* lanes, int warp_threads) {
  require_full_warp("mma_m16n8k8_tf32", warp_threads);
  float a[16][8];
  float b[8][8];
  float c[16][8];
  float d[16][8];
  for (int lane = 0; lane < kLanes; ++lane) {
    const auto& op = *static_cast<const MmaOperand*>(lanes[lane]);
    const int group = lane >> 2;
    const int thread_in_group = lane & 3;
    for (int i = 0; i < 4; ++i) {
      a[group + 8 * (i & 1)][thread_in_group + 4 * (i >> 1)] = tf32_value(op.a[i]);
    }
    for (int i = 0; i < 2; ++i) {
      b[thread_in_group + 4 * i][group] = tf32_value(op.b[i]);
    }
  }
  gather_c(lanes, c);
  mma_compute(a, b, c, d);
  scatter_d(lanes, d);
}

struct LdmatrixOperand {
  const void* row;
  uint32_t* r;
};

// ldmatrix.sync.aligned.m8n8.x{kMatrices}{.trans}.shared.b16 (PTX ISA): lanes 8j..8j+7 give the
// addresses of rows 0..7 of matrix j (16 bytes each); lane t receives, in register j, the
// elements (row t/4, cols 2(t%4) and 2(t%4)+1) of matrix j, low column in the low half. With
// .trans the matrix is read column-major: lane t gets (rows 2(t%4), 2(t%4)+1; col t/4).
template <int kMatrices, bool kTrans>
void ldmatrix_complete(void* const* lanes, int warp_threads) {
  require_full_warp("ldmatrix", warp_threads);
  uint16_t m[kMatrices][8][8];
  for (int j = 0; j < kMatrices; ++j) {
    for (int row = 0; row < 8; ++row) {
      const int lane = 8 * j + row;
      const void* address = static_cast<const LdmatrixOperand*>(lanes[lane])->row;
      if (reinterpret_cast<std::uintptr_t>(address) % 16 != 0) {
        host::kernel_error("ldmatrix: lane " + std::to_string(lane) +
                           " passed a row address that is not 16-byte aligned");
      }
      host::note_shared_access_by_lane(lane, address, 16, 16, host::SharedOp::kLdmatrix);
      std::memcpy(m[j][row], address, 16);
    }
  }
  for (int lane = 0; lane < kLanes; ++lane) {
    const auto& op = *static_cast<const LdmatrixOperand*>(lanes[lane]);
    const int group = lane >> 2;
    const int col = 2 * (lane & 3);
    for (int j = 0; j < kMatrices; ++j) {
      const uint16_t lo = kTrans ? m[j][col][group] : m[j][group][col];
      const uint16_t hi = kTrans ? m[j][col + 1][group] : m[j][group][col + 1];
      op.r[j] = static_cast<uint32_t>(lo) | (static_cast<uint32_t>(hi) << 16);
    }
  }
}

template <int kMatrices, bool kTrans>
void ldmatrix(uint32_t* r, const void* smem_row, const char* name) {
  LdmatrixOperand mine{smem_row, r};
  host::warp_collective(name, &mine, &ldmatrix_complete<kMatrices, kTrans>);
}

}  // namespace detail

DUET_DEVICE void warp_sync() {
  host::warp_collective("warp_sync", nullptr, &detail::warp_sync_complete);
}

DUET_DEVICE float shfl_xor(float v, int lane_mask) {
  detail::ShflOperand mine{v, lane_mask, 0.0f};
  host::warp_collective("shfl_xor", &mine, &detail::shfl_complete<true>);
  return mine.result;
}

DUET_DEVICE float shfl_idx(float v, int src_lane) {
  detail::ShflOperand mine{v, src_lane, 0.0f};
  host::warp_collective("shfl_idx", &mine, &detail::shfl_complete<false>);
  return mine.result;
}

DUET_DEVICE void mma_m16n8k16_bf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                                   const float (&c)[4]) {
  detail::MmaOperand mine{a, b, c, d};
  host::warp_collective("mma_m16n8k16_bf16", &mine,
                        &detail::mma_m16n8k16_complete<&bf16_bits_to_float>);
}

DUET_DEVICE void mma_m16n8k16_f16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                                  const float (&c)[4]) {
  detail::MmaOperand mine{a, b, c, d};
  host::warp_collective("mma_m16n8k16_f16", &mine,
                        &detail::mma_m16n8k16_complete<&f16_bits_to_float>);
}

DUET_DEVICE void mma_m16n8k8_tf32(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                                  const float (&c)[4]) {
  detail::MmaOperand mine{a, b, c, d};
  host::warp_collective("mma_m16n8k8_tf32", &mine, &detail::mma_m16n8k8_tf32_complete);
}

DUET_DEVICE void ldmatrix_x1(uint32_t (&r)[1], const void* smem_row) {
  detail::ldmatrix<1, false>(r, smem_row, "ldmatrix_x1");
}
DUET_DEVICE void ldmatrix_x2(uint32_t (&r)[2], const void* smem_row) {
  detail::ldmatrix<2, false>(r, smem_row, "ldmatrix_x2");
}
DUET_DEVICE void ldmatrix_x4(uint32_t (&r)[4], const void* smem_row) {
  detail::ldmatrix<4, false>(r, smem_row, "ldmatrix_x4");
}
DUET_DEVICE void ldmatrix_x2_trans(uint32_t (&r)[2], const void* smem_row) {
  detail::ldmatrix<2, true>(r, smem_row, "ldmatrix_x2_trans");
}
DUET_DEVICE void ldmatrix_x4_trans(uint32_t (&r)[4], const void* smem_row) {
  detail::ldmatrix<4, true>(r, smem_row, "ldmatrix_x4_trans");
}

// ---- cp.async and shared memory ----

DUET_DEVICE void cp_async_16(void* smem_dst, const void* gmem_src, int src_bytes) {
  host::cp_async_16(smem_dst, gmem_src, src_bytes);
}
DUET_DEVICE void cp_async_commit() { host::cp_async_commit(); }
template <int N>
DUET_DEVICE void cp_async_wait() {
  static_assert(N >= 0, "cp_async_wait<N>: N counts pending groups, at least 0");
  host::cp_async_wait(N);
}

template <class T>
DUET_DEVICE T smem_load(const T* p) {
  host::note_shared_access(p, sizeof(T), alignof(T), host::SharedOp::kLoad);
  return *p;
}
template <class T>
DUET_DEVICE void smem_store(T* p, T value) {
  host::note_shared_access(p, sizeof(T), alignof(T), host::SharedOp::kStore);
  *p = value;
}

// Only one simulated thread runs at a time, so a plain read-modify-write is atomic among them.
// Not race-checked: atomics never race with each other (mixing them with smem_load/smem_store on
// one address in one barrier interval is not detected).
namespace detail {
template <class T>
T add_and_return_old(T* address, T value) {
  const T old = *address;
  *address = old + value;
  return old;
}
}  // namespace detail
DUET_DEVICE float atomic_add(float* address, float value) {
  return detail::add_and_return_old(address, value);
}
DUET_DEVICE int atomic_add(int* address, int value) {
  return detail::add_and_return_old(address, value);
}
DUET_DEVICE unsigned atomic_add(unsigned* address, unsigned value) {
  return detail::add_and_return_old(address, value);
}

#endif  // DUET_HOST_BUILD

}  // namespace duet::kernels
