#pragma once
// The tile engine of the fused contrastive kernels (kernels/contrastive.cu, its only includer):
// element types, global → shared copies, one 64×64 tile of p·qᵀ on tensor cores with a two-stage
// cp.async pipeline over D, and the small reductions the kernels share. Device code only, in an
// unnamed namespace: each build (nvcc, host) compiles its own copy into contrastive.cu.
//
// Block shape: 256 threads, 8 warps; warp w owns rows 16·(w % 4) .. +16 and columns
// 32·(w / 4) .. +32 of a tile. Shared-memory rows are padded by 16 bytes so that ldmatrix reads
// eight rows from distinct banks.
#include <cstdint>

#include "kernels/contrastive_kernels.h"
#include "kernels/device.h"
#include "kernels/intrinsics.h"

namespace duet::kernels {
namespace {

constexpr int kThreads = 256;  // 8 warps
constexpr int kBM = static_cast<int>(kTileRows);
constexpr int kBN = static_cast<int>(kTileCols);
constexpr int kBK = 32;  // the slice of D per pipeline stage

// One pair of operands: s_pq = t·p_p·q_q for p [rows, dim] and q [cols, dim] (row-major,
// contiguous), t = exp(*log_scale).
struct PairOperands {
  const void* p;
  const void* q;
  int64_t rows;
  int64_t cols;
  int64_t dim;
  const float* log_scale;
};

// ceil(a / b) in device code (contrastive_kernels.h's ceil_div is host code).
DUET_DEVICE int64_t div_up(int64_t a, int64_t b) { return (a + b - 1) / b; }

// ---- element types -----------------------------------------------------------------------------
// 16-bit inputs go through mma.m16n8k16 with fragments from ldmatrix; fp32 inputs through
// mma.m16n8k8.tf32 as three products (hi·hi + hi·lo + lo·hi of the tf32 split), which keeps
// products close to fp32 accuracy.

struct Bf16 {
  using Storage = uint16_t;
  static constexpr bool kTf32 = false;
  static constexpr int kPad = 8;  // elements: rows 16 bytes longer, so ldmatrix avoids conflicts
  DUET_DEVICE static float to_float(Storage bits) { return bf16_bits_to_float(bits); }
  DUET_DEVICE static Storage from_float(float x) { return float_to_bf16_bits(x); }
  DUET_DEVICE static uint32_t pack(float lo, float hi) { return pack_bf16x2(lo, hi); }
  DUET_DEVICE static void mma(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    mma_m16n8k16_bf16(d, a, b, d);
  }
};

struct F16 {
  using Storage = uint16_t;
  static constexpr bool kTf32 = false;
  static constexpr int kPad = 8;
  DUET_DEVICE static float to_float(Storage bits) { return f16_bits_to_float(bits); }
  DUET_DEVICE static Storage from_float(float x) { return float_to_f16_bits(x); }
  DUET_DEVICE static uint32_t pack(float lo, float hi) { return pack_f16x2(lo, hi); }
  DUET_DEVICE static void mma(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    mma_m16n8k16_f16(d, a, b, d);
  }
};

struct F32 {
  using Storage = float;
  static constexpr bool kTf32 = true;
  static constexpr int kPad = 4;
  DUET_DEVICE static float to_float(Storage x) { return x; }
  DUET_DEVICE static Storage from_float(float x) { return x; }
};

// hi = tf32(x), lo = tf32(x − hi): x ≈ hi + lo to about 2^-22 relative.
DUET_DEVICE void split_tf32(float x, uint32_t& hi, uint32_t& lo) {
  hi = to_tf32(x);
  float hi_value = 0.0f;
  static_assert(sizeof(hi_value) == sizeof(hi), "tf32 registers hold float bits");
  __builtin_memcpy(&hi_value, &hi, sizeof(hi));
  lo = to_tf32(x - hi_value);
}

// d += a·b in 3×TF32 (the lo·lo term is below fp32 rounding).
DUET_DEVICE void mma_3xtf32(float (&d)[4], const float (&a)[4], const float (&b)[2]) {
  uint32_t a_hi[4], a_lo[4], b_hi[2], b_lo[2];
  DUET_UNROLL
  for (int i = 0; i < 4; ++i) {
    split_tf32(a[i], a_hi[i], a_lo[i]);
  }
  DUET_UNROLL
  for (int i = 0; i < 2; ++i) {
    split_tf32(b[i], b_hi[i], b_lo[i]);
  }
  mma_m16n8k8_tf32(d, a_lo, b_hi, d);  // small terms first
  mma_m16n8k8_tf32(d, a_hi, b_lo, d);
  mma_m16n8k8_tf32(d, a_hi, b_hi, d);
}

// Row strides (in elements) of the shared-memory tiles.
template <class E>
constexpr int kStageStride = kBK + E::kPad;
template <class E>
constexpr int kGStride = kBN + E::kPad;
template <class E, int kDC>
constexpr int kChunkStride = kDC + E::kPad;

// Bytes of the two pipeline stages, each a [64][BK] slice of p and of q.
template <class E>
constexpr int kStagingBytes = 2 * 2 *
                              kBM* kStageStride<E>* static_cast<int>(sizeof(typename E::Storage));

// Stage k holds p's slice at base + 2k·slice and q's right after it. (Arithmetic rather than an
// array of pointers: an array indexed by the stage would live in local memory.)
template <class E>
struct Staging {
  static constexpr int kSlice = kBM * kStageStride<E>;
  typename E::Storage* base;
  DUET_DEVICE typename E::Storage* p(int stage) const { return base + 2 * stage * kSlice; }
  DUET_DEVICE typename E::Storage* q(int stage) const { return base + (2 * stage + 1) * kSlice; }
};

template <class E>
DUET_DEVICE Staging<E> staging_at(unsigned char* smem) {
  return Staging<E>{reinterpret_cast<typename E::Storage*>(smem)};
}

// ---- global → shared ----------------------------------------------------------------------------

// Copies rows [row0, row0 + 64) and elements [k0, k0 + kWidth) of src [rows, dim] into
// dst [64][kStride], zeros outside src. `vec`: rows are 16-byte aligned (cp.async, asynchronous:
// the caller commits and waits); otherwise element by element (synchronous).
template <class E, int kWidth, int kStride>
DUET_DEVICE void load_tile(typename E::Storage* dst, const typename E::Storage* src, int64_t rows,
                           int64_t dim, int64_t row0, int64_t k0, bool vec) {
  using S = typename E::Storage;
  constexpr int kPerChunk = 16 / static_cast<int>(sizeof(S));
  constexpr int kChunksPerRow = kWidth / kPerChunk;
  constexpr int kChunks = kBM * kChunksPerRow;
  static_assert(kWidth % kPerChunk == 0, "tiles are whole 16-byte chunks");
  for (int c = static_cast<int>(threadIdx.x); c < kChunks; c += kThreads) {
    const int r = c / kChunksPerRow;
    const int e = (c % kChunksPerRow) * kPerChunk;
    const int64_t row = row0 + r;
    const int64_t k = k0 + e;
    S* d = dst + r * kStride + e;
    const bool inside = row < rows && k < dim;
    if (vec) {
      int bytes = 0;
      const S* s = src;  // not read when bytes is 0
      if (inside) {
        const int64_t left = dim - k;
        bytes = static_cast<int>((left < kPerChunk ? left : kPerChunk) *
                                 static_cast<int64_t>(sizeof(S)));
        s = src + row * dim + k;
      }
      cp_async_16(d, s, bytes);
    } else {
      DUET_UNROLL
      for (int i = 0; i < kPerChunk; ++i) {
        const S value = inside && k + i < dim ? src[row * dim + k + i] : S(0);
        smem_store(d + i, value);
      }
    }
  }
}

// ---- one 64×64 tile of p·qᵀ ---------------------------------------------------------------------
// Warp w owns rows 16·(w % 4) .. +16 and columns 32·(w / 4) .. +32 of the tile; acc[nt][i] is the
// product at row 16·(w % 4) + lane/4 + 8·(i ≥ 2), column 32·(w / 4) + 8·nt + 2·(lane % 4) + (i & 1)
// (the mma accumulator layout).

// One slice of kBK columns of D: acc += a·bᵀ for a = p's 64 rows (row stride kAStride) and b = q's
// 64 rows (row stride kBStride), both pointing at the slice's first column.
template <class E, int kAStride, int kBStride>
DUET_DEVICE void mma_slice(float (&acc)[4][4], const typename E::Storage* a_s,
                           const typename E::Storage* b_s) {
  const int lane = lane_id();
  const int wm = warp_id() % 4;
  const int wn = warp_id() / 4;
  if constexpr (E::kTf32) {
    const int g = lane >> 2;
    const int t = lane & 3;
    DUET_UNROLL
    for (int kk = 0; kk < kBK; kk += 8) {
      const float* ar = a_s + (wm * 16 + g) * kAStride + kk;
      const float a[4] = {smem_load(ar + t), smem_load(ar + 8 * kAStride + t),
                          smem_load(ar + t + 4), smem_load(ar + 8 * kAStride + t + 4)};
      DUET_UNROLL
      for (int nt = 0; nt < 4; ++nt) {
        const float* br = b_s + (wn * 32 + nt * 8 + g) * kBStride + kk;
        const float b[2] = {smem_load(br + t), smem_load(br + t + 4)};
        mma_3xtf32(acc[nt], a, b);
      }
    }
  } else {
    DUET_UNROLL
    for (int kk = 0; kk < kBK; kk += 16) {
      uint32_t a[4];
      ldmatrix_x4(a, a_s + (wm * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * kAStride + kk +
                         (lane >> 4) * 8);
      DUET_UNROLL
      for (int np = 0; np < 2; ++np) {
        uint32_t b[4];
        ldmatrix_x4(b, b_s + (wn * 32 + np * 16 + (lane & 7) + (lane >> 4) * 8) * kBStride + kk +
                           ((lane >> 3) & 1) * 8);
        const uint32_t b0[2] = {b[0], b[1]};
        const uint32_t b1[2] = {b[2], b[3]};
        E::mma(acc[2 * np], a, b0);
        E::mma(acc[2 * np + 1], a, b1);
      }
    }
  }
}

template <int kRows>
DUET_DEVICE void zero(float (&acc)[kRows][4]) {
  DUET_UNROLL
  for (auto& row : acc) {
    DUET_UNROLL
    for (float& v : row) {
      v = 0.0f;
    }
  }
}

// The walk over D's slices with one slice in flight: load(k) issues slice k's copies, compute(k)
// uses it once every thread's copies have landed. Returns with every cp.async group of the thread
// retired (so whatever the caller committed before is in place too) and the block synchronised.
template <class Load, class Compute>
DUET_DEVICE void slice_pipeline(int slices, const Load& load, const Compute& compute) {
  load(0);
  cp_async_commit();
  for (int k = 0; k < slices; ++k) {
    if (k + 1 < slices) {
      load(k + 1);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    block_sync();
    compute(k);
    block_sync();  // before the next load overwrites what compute read
  }
}

// acc = p[row0 .. +64) · q[col0 .. +64)ᵀ over all of D, both operands streamed through the two
// stages.
template <class E>
DUET_DEVICE void tile_products(float (&acc)[4][4], const Staging<E>& st, const PairOperands& in,
                               int64_t row0, int64_t col0, bool vec) {
  using S = typename E::Storage;
  constexpr int kStride = kStageStride<E>;
  const S* p = static_cast<const S*>(in.p);
  const S* q = static_cast<const S*>(in.q);
  zero(acc);
  slice_pipeline(
      static_cast<int>(div_up(in.dim, kBK)),
      [&](int k) {
        load_tile<E, kBK, kStride>(st.p(k & 1), p, in.rows, in.dim, row0, int64_t{k} * kBK, vec);
        load_tile<E, kBK, kStride>(st.q(k & 1), q, in.cols, in.dim, col0, int64_t{k} * kBK, vec);
      },
      [&](int k) { mma_slice<E, kStride, kStride>(acc, st.p(k & 1), st.q(k & 1)); });
}

// The same with the block's 64 rows of p resident in shared memory (row stride kPStride, all of D,
// loaded once by the caller): only q is streamed, halving what each tile reads.
template <class E, int kPStride>
DUET_DEVICE void tile_products_resident_p(float (&acc)[4][4], const Staging<E>& st,
                                          const typename E::Storage* p_resident,
                                          const PairOperands& in, int64_t col0, bool vec) {
  using S = typename E::Storage;
  constexpr int kStride = kStageStride<E>;
  const S* q = static_cast<const S*>(in.q);
  zero(acc);
  slice_pipeline(
      static_cast<int>(div_up(in.dim, kBK)),
      [&](int k) {
        load_tile<E, kBK, kStride>(st.q(k & 1), q, in.cols, in.dim, col0, int64_t{k} * kBK, vec);
      },
      [&](int k) { mma_slice<E, kPStride, kStride>(acc, p_resident + k * kBK, st.q(k & 1)); });
}

// The same with p resident and q's tile landing whole in `q_tile` (row stride kStride, slice k
// at column k·BK), where it stays for the caller's next product with it.
template <class E, int kStride>
DUET_DEVICE void tile_products_resident(float (&acc)[4][4], const typename E::Storage* p_resident,
                                        typename E::Storage* q_tile, const PairOperands& in,
                                        int64_t col0, bool vec) {
  using S = typename E::Storage;
  const S* q = static_cast<const S*>(in.q);
  zero(acc);
  slice_pipeline(
      static_cast<int>(div_up(in.dim, kBK)),
      [&](int k) {
        load_tile<E, kBK, kStride>(q_tile + k * kBK, q, in.cols, in.dim, col0, int64_t{k} * kBK,
                                   vec);
      },
      [&](int k) { mma_slice<E, kStride, kStride>(acc, p_resident + k * kBK, q_tile + k * kBK); });
}

// Where this thread's accumulator elements sit in the tile.
struct FragmentPlace {
  int row[2];  // tile rows of i < 2 and i >= 2
  int col0;    // tile column of nt = 0, i = 0; element (nt, i) is at col0 + 8·nt + (i & 1)
};

DUET_DEVICE FragmentPlace fragment_place() {
  const int lane = lane_id();
  const int wm = warp_id() % 4;
  const int wn = warp_id() / 4;
  const int row = wm * 16 + (lane >> 2);
  return FragmentPlace{{row, row + 8}, wn * 32 + 2 * (lane & 3)};
}

// ---- running log-sum-exp
// --------------------------------------------------------------------------- (m, s) stands for
// log(s) + m; empty is (−inf, 0).

DUET_DEVICE void lse_merge(float& m, float& s, float m2, float s2) {
  const float top = fmaxf(m, m2);
  if (top == -INFINITY) {
    return;
  }
  s = s * expf(m - top) + s2 * expf(m2 - top);
  m = top;
}

DUET_DEVICE float lse_value(float m, float s) { return m == -INFINITY ? -INFINITY : m + logf(s); }

// (m, s) merged over the lanes whose lane ids differ in `mask` bits.
DUET_DEVICE void lse_merge_lanes(float& m, float& s, int mask) {
  const float m2 = shfl_xor(m, mask);
  const float s2 = shfl_xor(s, mask);
  lse_merge(m, s, m2, s2);
}

// Σ of per-thread doubles over the block, in a fixed order; thread 0 gets the result.
DUET_DEVICE double block_sum(double value, double* scratch) {
  smem_store(scratch + threadIdx.x, value);
  block_sync();
  double total = 0.0;
  if (threadIdx.x == 0) {
    for (int i = 0; i < kThreads; ++i) {
      total += smem_load(scratch + i);
    }
  }
  block_sync();
  return total;
}

}  // namespace
}  // namespace duet::kernels
