#pragma once
// Small kernels that each exercise one intrinsic, written once and run two ways: by the host tests
// through the host execution layer (g++), and by the [cuda] test on a real GPU (nvcc), which
// compares the two. Pointers are device memory in the CUDA build and host memory in the host
// build. Blocks are 1-D. One translation unit per executable may include this file (the kernels
// are ordinary definitions); the inline namespace keeps the nvcc and g++ copies apart when one
// executable holds both.
#include <cstdint>

#include "kernels/device.h"
#include "kernels/intrinsics.h"

namespace duet::kernels::testing {
#if DUET_HOST_BUILD
inline namespace host_build {
#else
inline namespace cuda_build {
#endif

enum class MmaKind : int { kBf16 = 0, kF16 = 1, kTf32 = 2 };

// xor_out[t] = shfl_xor(in[t], lane_mask); idx_out[t] = shfl_idx(in[t], src_lanes[t]).
DUET_KERNEL void shfl_kernel(const float* in, const int* src_lanes, float* xor_out, float* idx_out,
                             int lane_mask) {
  const unsigned t = threadIdx.x;
  xor_out[t] = shfl_xor(in[t], lane_mask);
  idx_out[t] = shfl_idx(in[t], src_lanes[t]);
}

inline void launch_shfl(const float* in, const int* src_lanes, float* xor_out, float* idx_out,
                        int lane_mask, int threads, void* stream) {
  DUET_LAUNCH(shfl_kernel, dim3(1), dim3(threads), 0, stream, in, src_lanes, xor_out, idx_out,
              lane_mask);
}

// One warp, one MMA from per-lane fragments: a [32][4], b [32][2], c and d [32][4].
template <MmaKind kKind>
DUET_KERNEL void mma_kernel(const uint32_t* a, const uint32_t* b, const float* c, float* d) {
  const int lane = lane_id();
  const uint32_t fa[4] = {a[lane * 4], a[lane * 4 + 1], a[lane * 4 + 2], a[lane * 4 + 3]};
  const uint32_t fb[2] = {b[lane * 2], b[lane * 2 + 1]};
  const float fc[4] = {c[lane * 4], c[lane * 4 + 1], c[lane * 4 + 2], c[lane * 4 + 3]};
  float fd[4];
  if (kKind == MmaKind::kBf16) {
    mma_m16n8k16_bf16(fd, fa, fb, fc);
  } else if (kKind == MmaKind::kF16) {
    mma_m16n8k16_f16(fd, fa, fb, fc);
  } else {
    mma_m16n8k8_tf32(fd, fa, fb, fc);
  }
  for (int i = 0; i < 4; ++i) {
    d[lane * 4 + i] = fd[i];
  }
}

inline void launch_mma(MmaKind kind, const uint32_t* a, const uint32_t* b, const float* c, float* d,
                       void* stream) {
  if (kind == MmaKind::kBf16) {
    DUET_LAUNCH((mma_kernel<MmaKind::kBf16>), dim3(1), dim3(32), 0, stream, a, b, c, d);
  } else if (kind == MmaKind::kF16) {
    DUET_LAUNCH((mma_kernel<MmaKind::kF16>), dim3(1), dim3(32), 0, stream, a, b, c, d);
  } else {
    DUET_LAUNCH((mma_kernel<MmaKind::kTf32>), dim3(1), dim3(32), 0, stream, a, b, c, d);
  }
}

// ldmatrix of kMatrices 8x8 b16 matrices. `rows` holds kMatrices * 8 rows of 8 values, copied to
// shared memory as is; lane l passes the address of stored row row_of_lane[l] (so a test can
// permute which stored row serves as which matrix row). out is [32][kMatrices].
template <int kMatrices, bool kTrans>
DUET_KERNEL void ldmatrix_kernel(const uint16_t* rows, const int* row_of_lane, uint32_t* out) {
  DUET_DYNAMIC_SHARED(uint16_t, smem);
  const int lane = lane_id();
  for (int i = lane; i < kMatrices * 64; i += 32) {
    smem_store(&smem[i], rows[i]);
  }
  block_sync();
  const uint16_t* row = smem + 8 * row_of_lane[lane];
  uint32_t r[kMatrices];
  if (kMatrices == 1) {
    ldmatrix_x1(reinterpret_cast<uint32_t(&)[1]>(r), row);
  } else if (kMatrices == 2) {
    if (kTrans) {
      ldmatrix_x2_trans(reinterpret_cast<uint32_t(&)[2]>(r), row);
    } else {
      ldmatrix_x2(reinterpret_cast<uint32_t(&)[2]>(r), row);
    }
  } else {
    if (kTrans) {
      ldmatrix_x4_trans(reinterpret_cast<uint32_t(&)[4]>(r), row);
    } else {
      ldmatrix_x4(reinterpret_cast<uint32_t(&)[4]>(r), row);
    }
  }
  for (int j = 0; j < kMatrices; ++j) {
    out[lane * kMatrices + j] = r[j];
  }
}

template <int kMatrices, bool kTrans>
void launch_ldmatrix(const uint16_t* rows, const int* row_of_lane, uint32_t* out, void* stream) {
  DUET_LAUNCH((ldmatrix_kernel<kMatrices, kTrans>), dim3(1), dim3(32),
              kMatrices * 64 * sizeof(uint16_t), stream, rows, row_of_lane, out);
}

// How ldmatrix_mma_kernel loads its operands, so that every ldmatrix form feeds an MMA.
enum class LoadPlan : int {
  kX4AndX4Trans = 0,  // A: one x4; B (K x N, row-major): one x4.trans covering both n-tiles
  kX1AndX2 = 1,       // A: four x1; B^T (N x K, row-major): one x2 per n-tile
  kX2AndX2Trans = 2,  // A: two x2; B (K x N): one x2.trans per n-tile
  kX4AndX1 = 3,       // A: one x4; B^T (N x K): two x1 per n-tile
};

// D[16][16] = A[16][16] * B[16][16] + C, b16 operands (bf16 or f16 bits), through shared memory:
// cp.async brings a (row-major M x K), b (row-major K x N) and bt (row-major N x K, = B^T) into
// shared memory, ldmatrix makes the fragments, two m16n8k16 MMAs make the two 8-column halves.
// c and d are row-major 16 x 16 floats.
template <MmaKind kKind, LoadPlan kPlan>
DUET_KERNEL void ldmatrix_mma_kernel(const uint16_t* a, const uint16_t* b, const uint16_t* bt,
                                     const float* c, float* d) {
  DUET_DYNAMIC_SHARED(uint16_t, smem);
  uint16_t* sa = smem;        // [16][16]
  uint16_t* sb = smem + 256;  // [16][16]
  uint16_t* sbt = smem + 512;
  const int lane = lane_id();
  // 3 matrices x 512 bytes = 96 chunks of 16 bytes, three per lane.
  for (int chunk = lane; chunk < 96; chunk += 32) {
    const int matrix = chunk / 32;
    const uint16_t* source = matrix == 0 ? a : matrix == 1 ? b : bt;
    cp_async_16(smem + chunk * 8, source + (chunk % 32) * 8, 16);
  }
  cp_async_commit();
  cp_async_wait<0>();
  block_sync();

  // A fragment (row-major 16x16 as four 8x8 matrices: rows 0-7/8-15 x cols 0-7/8-15).
  uint32_t fa[4];
  if (kPlan == LoadPlan::kX1AndX2) {
    for (int j = 0; j < 4; ++j) {
      uint32_t r[1];
      ldmatrix_x1(r, sa + ((lane % 8) + 8 * (j % 2)) * 16 + 8 * (j / 2));
      fa[j] = r[0];
    }
  } else if (kPlan == LoadPlan::kX2AndX2Trans) {
    for (int half = 0; half < 2; ++half) {  // half 0: cols 0-7 (a0..a3), half 1: cols 8-15
      uint32_t r[2];
      ldmatrix_x2(r, sa + (lane % 16) * 16 + 8 * half);
      fa[2 * half] = r[0];
      fa[2 * half + 1] = r[1];
    }
  } else {
    ldmatrix_x4(fa, sa + (lane % 16) * 16 + 8 * (lane / 16));
  }

  // B fragments for n-tiles 0 (cols 0-7) and 1 (cols 8-15). From B (K x N) the 8x8 pieces are
  // transposed; from B^T (N x K, rows n, columns k) plain loads give the "col" B fragment.
  uint32_t fb[2][2];
  if (kPlan == LoadPlan::kX4AndX4Trans) {
    // Matrices: (k 0-7, tile 0), (k 8-15, tile 0), (k 0-7, tile 1), (k 8-15, tile 1).
    uint32_t r[4];
    ldmatrix_x4_trans(r, sb + (lane % 16) * 16 + 8 * (lane / 16));
    fb[0][0] = r[0];
    fb[0][1] = r[1];
    fb[1][0] = r[2];
    fb[1][1] = r[3];
  } else {
    for (int tile = 0; tile < 2; ++tile) {
      if (kPlan == LoadPlan::kX1AndX2) {
        ldmatrix_x2(fb[tile], sbt + (8 * tile + lane % 8) * 16 + 8 * ((lane / 8) % 2));
      } else if (kPlan == LoadPlan::kX4AndX1) {
        for (int k_half = 0; k_half < 2; ++k_half) {
          uint32_t r[1];
          ldmatrix_x1(r, sbt + (8 * tile + lane % 8) * 16 + 8 * k_half);
          fb[tile][k_half] = r[0];
        }
      } else {
        ldmatrix_x2_trans(fb[tile], sb + (lane % 16) * 16 + 8 * tile);
      }
    }
  }

  // C/D fragment: c_i at row lane/4 + 8 * (i / 2), col 2 * (lane % 4) + i % 2 (+ 8 per n-tile).
  for (int tile = 0; tile < 2; ++tile) {
    float fc[4];
    for (int i = 0; i < 4; ++i) {
      fc[i] = c[(lane / 4 + 8 * (i / 2)) * 16 + 8 * tile + 2 * (lane % 4) + i % 2];
    }
    float fd[4];
    if (kKind == MmaKind::kBf16) {
      mma_m16n8k16_bf16(fd, fa, fb[tile], fc);
    } else {
      mma_m16n8k16_f16(fd, fa, fb[tile], fc);
    }
    for (int i = 0; i < 4; ++i) {
      d[(lane / 4 + 8 * (i / 2)) * 16 + 8 * tile + 2 * (lane % 4) + i % 2] = fd[i];
    }
  }
}

template <MmaKind kKind, LoadPlan kPlan>
void launch_ldmatrix_mma(const uint16_t* a, const uint16_t* b, const uint16_t* bt, const float* c,
                         float* d, void* stream) {
  DUET_LAUNCH((ldmatrix_mma_kernel<kKind, kPlan>), dim3(1), dim3(32), 3 * 256 * sizeof(uint16_t),
              stream, a, b, bt, c, d);
}

// out[16 t + i] = byte i of shared memory after cp_async_16(.., src + 16 t, src_bytes[t]) and a
// full wait; shared memory starts as 0x5A bytes, so zero-filled bytes are told from untouched.
DUET_KERNEL void cp_async_kernel(const unsigned char* src, const int* src_bytes,
                                 unsigned char* out) {
  DUET_DYNAMIC_SHARED(unsigned char, smem);
  const unsigned t = threadIdx.x;
  for (int i = 0; i < 16; ++i) {
    smem_store(&smem[16 * t + i], static_cast<unsigned char>(0x5A));
  }
  cp_async_16(smem + 16 * t, src + 16 * t, src_bytes[t]);
  cp_async_commit();
  cp_async_wait<0>();
  for (int i = 0; i < 16; ++i) {
    out[16 * t + i] = smem_load(&smem[16 * t + i]);
  }
}

inline void launch_cp_async(const unsigned char* src, const int* src_bytes, unsigned char* out,
                            int threads, void* stream) {
  DUET_LAUNCH(cp_async_kernel, dim3(1), dim3(threads), 16 * threads, stream, src, src_bytes, out);
}

// Every conversion of in[i]: float -> bf16, f16, tf32 bits, the packs of (in[i], in[n-1-i]), and
// widening of the 16-bit patterns bits[i].
DUET_KERNEL void convert_kernel(const float* in, const uint16_t* bits, int n, uint16_t* bf16,
                                uint16_t* f16, uint32_t* tf32, uint32_t* packed_bf16,
                                uint32_t* packed_f16, float* from_bf16, float* from_f16) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i >= n) {
    return;
  }
  bf16[i] = float_to_bf16_bits(in[i]);
  f16[i] = float_to_f16_bits(in[i]);
  tf32[i] = to_tf32(in[i]);
  packed_bf16[i] = pack_bf16x2(in[i], in[n - 1 - i]);
  packed_f16[i] = pack_f16x2(in[i], in[n - 1 - i]);
  from_bf16[i] = bf16_bits_to_float(bits[i]);
  from_f16[i] = f16_bits_to_float(bits[i]);
}

struct ConvertBuffers {
  const float* in;
  const uint16_t* bits;
  uint16_t* bf16;
  uint16_t* f16;
  uint32_t* tf32;
  uint32_t* packed_bf16;
  uint32_t* packed_f16;
  float* from_bf16;
  float* from_f16;
};

inline void launch_convert(const ConvertBuffers& b, int n, void* stream) {
  const int threads = 256;
  DUET_LAUNCH(convert_kernel, dim3((n + threads - 1) / threads), dim3(threads), 0, stream, b.in,
              b.bits, n, b.bf16, b.f16, b.tf32, b.packed_bf16, b.packed_f16, b.from_bf16,
              b.from_f16);
}

}  // namespace host_build / cuda_build
}  // namespace duet::kernels::testing
