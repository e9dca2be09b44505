// The fused contrastive-loss kernels and their launchers (API and contract:
// contrastive_kernels.h; design, passes and costs: docs/losses.md). Compiled by nvcc for GPUs and,
// unchanged, by the host compiler on the host execution layer for tests (kernels/device.h).
//
// Four tile walks over s = t·p·qᵀ (contrastive_tiles.cuh forms each 64×64 tile on tensor cores):
//   softmax_stats_kernel   rows' and columns' log-sum-exp                        InfoNCE forward
//   sigmoid_loss_kernel    Σ softplus(−z·(s + b))                                 SigLIP forward
//   grad_kernel            dp = g_out·t·G·q for G from an epilogue (softmax or sigmoid), plus the
//                          sums behind d log t (and d b)                          both backwards
// and small kernels that merge partials, form the positives and assemble the loss. The gradient
// of the column operand is the same grad_kernel with p and q swapped. Invariants:
//   - no n×m matrix in global memory: a tile lives in registers (s) and shared memory (G);
//   - every output element and partial is written by exactly one thread, and partials are
//     combined in a fixed order, so results do not depend on scheduling;
//   - rows, columns and D need not be multiples of the tiles: what lies outside is loaded as
//     zeros and masked out of every statistic, sum and output.
#include <cmath>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <utility>

#include "kernels/contrastive_kernels.h"
#include "kernels/contrastive_tiles.cuh"
#include "kernels/device.h"
#include "kernels/intrinsics.h"

namespace duet::kernels {
namespace {

// ---- the forward walks' tile: p resident when D fits
// --------------------------------------------- With D up to kResidentD (512 for 16-bit inputs, 256
// for fp32) a forward block keeps its 64 rows of p in shared memory for the whole walk and streams
// only q.

template <class E>
constexpr int kResidentD = E::kTf32 ? 256 : 512;
template <class E>
constexpr int kResidentStride = kResidentD<E> + E::kPad;
template <class E>
constexpr int kResidentPBytes =
    kBM* kResidentStride<E>* static_cast<int>(sizeof(typename E::Storage));

template <class E, bool kResidentP>
DUET_DEVICE void load_resident_p(typename E::Storage* p_res, const PairOperands& in, int64_t row0,
                                 bool vec) {
  if constexpr (kResidentP) {  // retired by the first tile's pipeline
    load_tile<E, kResidentD<E>, kResidentStride<E>>(
        p_res, static_cast<const typename E::Storage*>(in.p), in.rows, in.dim, row0, 0, vec);
    cp_async_commit();
  }
}

template <class E, bool kResidentP>
DUET_DEVICE void walk_tile(float (&acc)[4][4], const Staging<E>& st,
                           const typename E::Storage* p_res, const PairOperands& in, int64_t row0,
                           int64_t col0, bool vec) {
  if constexpr (kResidentP) {
    tile_products_resident_p<E, kResidentStride<E>>(acc, st, p_res, in, col0, vec);
  } else {
    tile_products<E>(acc, st, in, row0, col0, vec);
  }
}

// ---- InfoNCE forward: log-sum-exp statistics
// ------------------------------------------------------- Block (x, y): rows [64x, 64x + 64)
// against the column tiles y, y + splits, ... Each thread keeps a running (max, sum) for its two
// rows; per tile, the column statistics of the block's 64 rows go to part_cols[x][col] (with
// columns asked for). At the end the rows' statistics of this split go to part_rows[y][row].

template <class E, bool kResidentP>
DUET_KERNEL void __launch_bounds__(kThreads, 1)
    softmax_stats_kernel(PairOperands in, float* part_rows, float* part_cols, int64_t splits,
                         bool vec) {
  using S = typename E::Storage;
  DUET_DYNAMIC_SHARED(unsigned char, smem);
  const Staging<E> st = staging_at<E>(smem);
  S* p_res = reinterpret_cast<S*>(smem + kStagingBytes<E>);  // resident: [64][kResidentStride]
  float* col_m = reinterpret_cast<float*>(smem + kStagingBytes<E> +
                                          (kResidentP ? kResidentPBytes<E> : 0));  // [4][64]
  float* col_s = col_m + 4 * kBN;
  float* row_m = col_s + 4 * kBN;  // [2 column halves][64]
  float* row_s = row_m + 2 * kBM;

  const float t = expf(*in.log_scale);
  const int64_t row0 = int64_t{blockIdx.x} * kBM;
  const int64_t col_tiles = div_up(in.cols, kBN);
  const FragmentPlace place = fragment_place();
  const int lane = lane_id();
  const int wm = warp_id() % 4;
  const int wn = warp_id() / 4;
  const bool row_ok[2] = {row0 + place.row[0] < in.rows, row0 + place.row[1] < in.rows};

  float run_m[2] = {-INFINITY, -INFINITY};
  float run_s[2] = {0.0f, 0.0f};
  load_resident_p<E, kResidentP>(p_res, in, row0, vec);
  for (int64_t ct = blockIdx.y; ct < col_tiles; ct += splits) {
    const int64_t col0 = ct * kBN;
    float acc[4][4];
    walk_tile<E, kResidentP>(acc, st, p_res, in, row0, col0, vec);
    // s, with −inf outside the matrix.
    DUET_UNROLL
    for (int nt = 0; nt < 4; ++nt) {
      DUET_UNROLL
      for (int i = 0; i < 4; ++i) {
        const bool ok = row_ok[i >> 1] && col0 + place.col0 + 8 * nt + (i & 1) < in.cols;
        acc[nt][i] = ok ? t * acc[nt][i] : -INFINITY;
      }
    }
    DUET_UNROLL
    for (int h = 0; h < 2; ++h) {  // this thread's 8 values of each of its rows
      float m = -INFINITY;
      DUET_UNROLL
      for (int nt = 0; nt < 4; ++nt) {
        m = fmaxf(m, fmaxf(acc[nt][2 * h], acc[nt][2 * h + 1]));
      }
      float s = 0.0f;
      if (m != -INFINITY) {
        DUET_UNROLL
        for (int nt = 0; nt < 4; ++nt) {
          s += expf(acc[nt][2 * h] - m) + expf(acc[nt][2 * h + 1] - m);
        }
      }
      lse_merge(run_m[h], run_s[h], m, s);
    }
    if (part_cols != nullptr) {
      DUET_UNROLL
      for (int nt = 0; nt < 4; ++nt) {
        DUET_UNROLL
        for (int c = 0; c < 2; ++c) {  // this thread's two rows of the column
          const float lo = acc[nt][c];
          const float hi = acc[nt][2 + c];
          float m = fmaxf(lo, hi);
          float s = m == -INFINITY ? 0.0f : expf(lo - m) + expf(hi - m);
          DUET_UNROLL
          for (int mask = 4; mask <= 16; mask <<= 1) {  // the 8 lanes sharing the column
            lse_merge_lanes(m, s, mask);
          }
          if ((lane >> 2) == 0) {
            const int col = place.col0 + 8 * nt + c;
            smem_store(col_m + wm * kBN + col, m);
            smem_store(col_s + wm * kBN + col, s);
          }
        }
      }
      block_sync();
      if (threadIdx.x < kBN) {
        const int col = static_cast<int>(threadIdx.x);
        float m = -INFINITY;
        float s = 0.0f;
        DUET_UNROLL
        for (int g = 0; g < 4; ++g) {
          lse_merge(m, s, smem_load(col_m + g * kBN + col), smem_load(col_s + g * kBN + col));
        }
        if (col0 + col < in.cols) {
          part_cols[int64_t{blockIdx.x} * in.cols + col0 + col] = lse_value(m, s);
        }
      }
      // The next tile's pipeline synchronises the block before col_m/col_s are written again.
    }
  }
  DUET_UNROLL
  for (int h = 0; h < 2; ++h) {  // the 4 lanes sharing the row
    lse_merge_lanes(run_m[h], run_s[h], 1);
    lse_merge_lanes(run_m[h], run_s[h], 2);
    if ((lane & 3) == 0) {
      smem_store(row_m + wn * kBM + place.row[h], run_m[h]);
      smem_store(row_s + wn * kBM + place.row[h], run_s[h]);
    }
  }
  block_sync();
  if (threadIdx.x < kBM) {
    const int r = static_cast<int>(threadIdx.x);
    float m = smem_load(row_m + r);
    float s = smem_load(row_s + r);
    lse_merge(m, s, smem_load(row_m + kBM + r), smem_load(row_s + kBM + r));
    if (row0 + r < in.rows) {
      part_rows[int64_t{blockIdx.y} * in.rows + row0 + r] = lse_value(m, s);
    }
  }
}

// out[i] = log Σ_k exp(parts[k][i]) over `count` partials, in k order.
DUET_KERNEL void __launch_bounds__(kThreads, 1)
    merge_lse_kernel(const float* parts, int64_t count, int64_t n, float* out) {
  const int64_t i = int64_t{blockIdx.x} * kThreads + threadIdx.x;
  if (i >= n) {
    return;
  }
  float m = -INFINITY;
  for (int64_t k = 0; k < count; ++k) {
    m = fmaxf(m, parts[k * n + i]);
  }
  float s = 0.0f;
  if (m != -INFINITY) {
    for (int64_t k = 0; k < count; ++k) {
      s += expf(parts[k * n + i] - m);
    }
  }
  out[i] = lse_value(m, s);
}

// ---- SigLIP forward: Σ softplus(−z·(s + b))
// -------------------------------------------------------

template <class E, bool kResidentP>
DUET_KERNEL void __launch_bounds__(kThreads, 1)
    sigmoid_loss_kernel(PairOperands in, const float* bias_ptr, int64_t pos_offset,
                        double* partials, int64_t splits, bool vec) {
  using S = typename E::Storage;
  DUET_DYNAMIC_SHARED(unsigned char, smem);
  const Staging<E> st = staging_at<E>(smem);
  S* p_res = reinterpret_cast<S*>(smem + kStagingBytes<E>);  // resident: [64][kResidentStride]
  double* scratch =
      reinterpret_cast<double*>(smem + kStagingBytes<E> + (kResidentP ? kResidentPBytes<E> : 0));
  const float t = expf(*in.log_scale);
  const float bias = *bias_ptr;
  const int64_t row0 = int64_t{blockIdx.x} * kBM;
  const int64_t col_tiles = div_up(in.cols, kBN);
  const FragmentPlace place = fragment_place();

  double total = 0.0;
  load_resident_p<E, kResidentP>(p_res, in, row0, vec);
  for (int64_t ct = blockIdx.y; ct < col_tiles; ct += splits) {
    const int64_t col0 = ct * kBN;
    float acc[4][4];
    walk_tile<E, kResidentP>(acc, st, p_res, in, row0, col0, vec);
    float tile_total = 0.0f;
    DUET_UNROLL
    for (int nt = 0; nt < 4; ++nt) {
      DUET_UNROLL
      for (int i = 0; i < 4; ++i) {
        const int64_t row = row0 + place.row[i >> 1];
        const int64_t col = col0 + place.col0 + 8 * nt + (i & 1);
        if (row < in.rows && col < in.cols) {
          const float s = t * acc[nt][i] + bias;
          const float zs = col == row + pos_offset ? s : -s;  // z·s
          // softplus(−z·s) = max(−z·s, 0) + log(1 + exp(−|s|)), stable for any s.
          tile_total += fmaxf(-zs, 0.0f) + log1pf(expf(-fabsf(s)));
        }
      }
    }
    total += tile_total;
  }
  total = block_sum(total, scratch);
  if (threadIdx.x == 0) {
    partials[int64_t{blockIdx.x} * splits + blockIdx.y] = total;
  }
}

// *out = factor · (*multiplier) · Σ_k partials[k·stride] (multiplier null: 1), and likewise
// *out2 over partials[k·stride + 1] when out2 is not null. One block, a fixed order.
DUET_KERNEL void __launch_bounds__(kThreads, 1)
    sum_partials_kernel(const double* partials, int64_t count, int64_t stride, float factor,
                        const float* multiplier, float* out, float* out2) {
  DUET_DYNAMIC_SHARED(double, scratch);  // [kThreads]
  const double scale = multiplier == nullptr ? double{factor} : double{factor} * *multiplier;
  DUET_UNROLL
  for (int which = 0; which < 2; ++which) {
    float* target = which == 0 ? out : out2;
    if (target == nullptr) {
      continue;
    }
    double mine = 0.0;
    for (int64_t k = threadIdx.x; k < count; k += kThreads) {
      mine += partials[k * stride + which];
    }
    const double total = block_sum(mine, scratch);
    if (threadIdx.x == 0) {
      *target = static_cast<float>(scale * total);
    }
  }
}

// ---- InfoNCE's positives and loss ---------------------------------------------------------------

// pos[i] = p_i·q_{i + offset} (without t), i < n: one warp per row, fp32 accumulation.
template <class E>
DUET_KERNEL void __launch_bounds__(kThreads)
    positives_kernel(const void* p_ptr, const void* q_ptr, int64_t n, int64_t dim, int64_t offset,
                     float* pos) {
  using S = typename E::Storage;
  const int64_t row = int64_t{blockIdx.x} * (kThreads / 32) + warp_id();
  const bool ok = row < n;  // every lane of the warp reaches the shuffles either way
  const S* p = static_cast<const S*>(p_ptr) + (ok ? row : 0) * dim;
  const S* q = static_cast<const S*>(q_ptr) + (ok ? row + offset : 0) * dim;
  float sum = 0.0f;
  if (ok) {
    for (int64_t d = lane_id(); d < dim; d += 32) {
      sum += E::to_float(p[d]) * E::to_float(q[d]);
    }
  }
  DUET_UNROLL
  for (int mask = 16; mask >= 1; mask >>= 1) {
    sum += shfl_xor(sum, mask);
  }
  if (ok && lane_id() == 0) {
    pos[row] = sum;
  }
}

// *loss = (Σ_i (lse_a[i] − t·pos_a[i]) + Σ_i (lse_b[i] − t·pos_b[i])) / (2n). One block.
DUET_KERNEL void __launch_bounds__(kThreads, 1)
    infonce_loss_kernel(const float* lse_a, const float* pos_a, const float* lse_b,
                        const float* pos_b, int64_t n, const float* log_scale, float* loss) {
  DUET_DYNAMIC_SHARED(double, scratch);  // [kThreads]
  const double t = exp(double{*log_scale});
  double mine = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += kThreads) {
    mine += (double{lse_a[i]} - t * pos_a[i]) + (double{lse_b[i]} - t * pos_b[i]);
  }
  const double total = block_sum(mine, scratch);
  if (threadIdx.x == 0) {
    *loss = static_cast<float>(total / (2.0 * static_cast<double>(n)));
  }
}

// ---- gradients: dp = g_out·t·G·q
// ----------------------------------------------------------------- Block x owns rows [64x, 64x +
// 64) of p and columns [d0, d0 + kDC) of dp. It walks every column tile of q: recomputes the tile
// of s, turns it into G (the epilogue) in shared memory, and adds G·q[tile, d0 .. d0 + kDC) to its
// accumulators (warp w: rows 16·(w % 4).., columns (kDC / 2)·(w / 4)..). G is stored divided by the
// epilogue's scale (so that fp16 keeps its precision: |G / scale| <= 1) and the scale is applied
// once at the end.

struct SoftmaxEpilogue {
  const float* lse_rows;        // null: no row term
  const float* lse_cols;        // null: no column term
  float a_rows, a_cols, a_pos;  // the weights divided by `scale`
  float scale;
  int64_t pos_offset;

  DUET_DEVICE void load() {}
  DUET_DEVICE float row_value(int64_t p) const { return lse_rows == nullptr ? 0.0f : lse_rows[p]; }
  DUET_DEVICE float col_value(int64_t q) const { return lse_cols == nullptr ? 0.0f : lse_cols[q]; }
  // G / scale at (p, q) for s = t·p·q; sum1 += (G / scale)·s.
  DUET_DEVICE float operator()(float s, float row_lse, float col_lse, int64_t p, int64_t q,
                               float& sum1, float&) const {
    float g = 0.0f;
    if (lse_rows != nullptr) {
      g += a_rows * expf(s - row_lse);
    }
    if (lse_cols != nullptr) {
      g += a_cols * expf(s - col_lse);
    }
    if (q == p + pos_offset) {
      g -= a_pos;
    }
    sum1 += g * s;
    return g;
  }
};

struct SigmoidEpilogue {
  const float* bias_ptr;  // device scalar b, read by load()
  float scale;            // w = 1/n
  int64_t pos_offset;
  float bias = 0.0f;

  DUET_DEVICE void load() { bias = *bias_ptr; }
  DUET_DEVICE float row_value(int64_t) const { return 0.0f; }
  DUET_DEVICE float col_value(int64_t) const { return 0.0f; }
  // G / w = σ(s + b) − [positive]; sum1 += (G / w)·s, sum2 += G / w.
  DUET_DEVICE float operator()(float s, float, float, int64_t p, int64_t q, float& sum1,
                               float& sum2) const {
    const float logit = s + bias;
    const float e = expf(-fabsf(logit));  // one exponential gives σ either side of 0
    const float sigma = logit >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
    const float g = sigma - (q == p + pos_offset ? 1.0f : 0.0f);
    sum1 += g * s;
    sum2 += g;
    return g;
  }
};

template <class Epilogue>
struct GradArgs {
  PairOperands in;
  Epilogue epilogue;
  int64_t d0;                // first column of dp this launch computes
  const float* grad_output;  // device scalar
  void* grad_p;              // [rows, dim]; null: only the sums (no G·q products)
  double* partials;          // [row tiles][2]: Σ G·s, Σ G; null to skip
  bool vec;
};

// Shared memory of grad_kernel. Resident (D <= kDC): p's 64 rows and q's tile whole, [64][kCS]
// each, then G and the sums' scratch; the q tile serves both products. Streaming (D > kDC, one
// launch per chunk of kDC columns of dp): the two stages, G, q's chunk and the scratch.
template <class E, int kDC, bool kResident>
constexpr int kGradSmemBytes = (kResident ? 0 : kStagingBytes<E>)+(
                                   (kResident ? 2 : 1) * kBN * kChunkStride<E, kDC> +
                                   kBM *
                                       kGStride<E>)*static_cast<int>(sizeof(typename E::Storage)) +
                               kThreads* static_cast<int>(sizeof(double));

// G / scale at this thread's 16 elements of the tile (s_acc: the raw products p·q), added to the
// sums, and stored to g_s [64][kGS] when `store`.
// row_value: the epilogue's per-row value (the row's log-sum-exp) of this thread's two rows.
template <class E, int kGS, class Epilogue>
DUET_DEVICE void form_g(const float (&s_acc)[4][4], float t, const Epilogue& epi,
                        const float (&row_value)[2], const FragmentPlace& place,
                        const PairOperands& in, int64_t row0, int64_t col0,
                        typename E::Storage* g_s, bool store, float& sum1, float& sum2) {
  using S = typename E::Storage;
  DUET_UNROLL
  for (int nt = 0; nt < 4; ++nt) {
    float g[4];
    DUET_UNROLL
    for (int i = 0; i < 4; ++i) {
      const int64_t row = row0 + place.row[i >> 1];
      const int64_t col = col0 + place.col0 + 8 * nt + (i & 1);
      g[i] = 0.0f;
      if (row < in.rows && col < in.cols) {
        g[i] = epi(t * s_acc[nt][i], row_value[i >> 1], epi.col_value(col), row, col, sum1, sum2);
      }
    }
    const int col = place.col0 + 8 * nt;
    DUET_UNROLL
    for (int h = 0; h < 2 && store; ++h) {
      S* at = g_s + place.row[h] * kGS + col;
      if constexpr (E::kTf32) {
        smem_store(at, g[2 * h]);
        smem_store(at + 1, g[2 * h + 1]);
      } else {
        smem_store(reinterpret_cast<uint32_t*>(at), E::pack(g[2 * h], g[2 * h + 1]));
      }
    }
  }
}

// acc += G[this warp's 16 rows, 64] · q_tile[64, this warp's kNT·8 columns from n_base]: the
// second product, with q_tile's rows as the reduction dimension (ldmatrix .trans fragments).
template <class E, int kNT, int kGS, int kCS>
DUET_DEVICE void accumulate_g_q(float (&acc)[kNT][4], const typename E::Storage* g_s,
                                const typename E::Storage* q_tile, int n_base) {
  const int lane = lane_id();
  const int wm = warp_id() % 4;
  if constexpr (E::kTf32) {
    const int g = lane >> 2;
    const int tq = lane & 3;
    DUET_UNROLL
    for (int kk = 0; kk < kBN; kk += 8) {
      const float* ar = g_s + (wm * 16 + g) * kGS + kk;
      const float a[4] = {smem_load(ar + tq), smem_load(ar + 8 * kGS + tq), smem_load(ar + tq + 4),
                          smem_load(ar + 8 * kGS + tq + 4)};
      DUET_UNROLL
      for (int nt = 0; nt < kNT; ++nt) {
        const float* br = q_tile + (kk + tq) * kCS + n_base + nt * 8 + g;
        const float b[2] = {smem_load(br), smem_load(br + 4 * kCS)};
        mma_3xtf32(acc[nt], a, b);
      }
    }
  } else {
    DUET_UNROLL
    for (int kk = 0; kk < kBN; kk += 16) {
      uint32_t a[4];
      ldmatrix_x4(
          a, g_s + (wm * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * kGS + kk + (lane >> 4) * 8);
      DUET_UNROLL
      for (int np = 0; np < kNT / 2; ++np) {
        uint32_t b[4];
        ldmatrix_x4_trans(b, q_tile + (kk + (lane & 7) + ((lane >> 3) & 1) * 8) * kCS + n_base +
                                 np * 16 + (lane >> 4) * 8);
        const uint32_t b0[2] = {b[0], b[1]};
        const uint32_t b1[2] = {b[2], b[3]};
        E::mma(acc[2 * np], a, b0);
        E::mma(acc[2 * np + 1], a, b1);
      }
    }
  }
}

// dp[rows, d0 + n_base ..] = factor·acc in the inputs' dtype, inside the matrix and the chunk.
template <class E, int kNT>
DUET_DEVICE void write_dp(const float (&acc)[kNT][4], float factor, int64_t row0, int64_t rows,
                          int64_t dim, int64_t d0, int64_t d_end, int n_base, void* grad_p) {
  using S = typename E::Storage;
  const int lane = lane_id();
  const int wm = warp_id() % 4;
  S* out = static_cast<S*>(grad_p);
  DUET_UNROLL
  for (int nt = 0; nt < kNT; ++nt) {
    DUET_UNROLL
    for (int i = 0; i < 4; ++i) {
      const int64_t row = row0 + wm * 16 + (lane >> 2) + 8 * (i >> 1);
      const int64_t d = d0 + n_base + nt * 8 + 2 * (lane & 3) + (i & 1);
      if (row < rows && d < d_end) {
        out[row * dim + d] = E::from_float(factor * acc[nt][i]);
      }
    }
  }
}

template <class E, int kDC, class Epilogue, bool kResident>
DUET_KERNEL void __launch_bounds__(kThreads, 1) grad_kernel(GradArgs<Epilogue> args) {
  using S = typename E::Storage;
  constexpr int kNT = kDC / 16;  // n8 tiles of dp per warp (two warps share the 64 rows' kDC)
  constexpr int kGS = kGStride<E>;
  constexpr int kCS = kChunkStride<E, kDC>;
  DUET_DYNAMIC_SHARED(unsigned char, smem);
  const Staging<E> st = staging_at<E>(smem);  // streaming only
  S* p_res = reinterpret_cast<S*>(smem);      // resident only: [64][kCS]
  S* chunk = kResident ? p_res + kBM * kCS    // [64][kCS]: q[tile, d0 ..)
                       : reinterpret_cast<S*>(smem + kStagingBytes<E>);
  S* g_s = chunk + kBN * kCS;                                    // [64][kGS]: G / scale
  double* scratch = reinterpret_cast<double*>(g_s + kBM * kGS);  // [kThreads]

  const PairOperands& in = args.in;
  Epilogue epi = args.epilogue;
  epi.load();  // device scalars into registers
  const float t = expf(*in.log_scale);
  const int64_t row0 = int64_t{blockIdx.x} * kBM;
  const FragmentPlace place = fragment_place();
  float row_value[2];  // the epilogue's value of this thread's two rows (0 outside p)
  DUET_UNROLL
  for (int h = 0; h < 2; ++h) {
    const int64_t row = row0 + place.row[h];
    row_value[h] = row < in.rows ? epi.row_value(row) : 0.0f;
  }
  const int n_base = (warp_id() / 4) * (kDC / 2);  // this warp's first column of the chunk
  const bool want_dp = args.grad_p != nullptr;

  float acc[kNT][4];
  zero(acc);
  double sum1 = 0.0;
  double sum2 = 0.0;
  if constexpr (kResident) {  // p's rows, all of D, once for the whole walk
    load_tile<E, kDC, kCS>(p_res, static_cast<const S*>(in.p), in.rows, in.dim, row0, 0, args.vec);
    cp_async_commit();
  }
  for (int64_t col0 = 0; col0 < in.cols; col0 += kBN) {
    float s_acc[4][4];
    if constexpr (kResident) {  // q's tile lands in `chunk`, where the second product reads it
      tile_products_resident<E, kCS>(s_acc, p_res, chunk, in, col0, args.vec);
    } else {
      // q's rows of this tile, columns d0 .. d0 + kDC: in flight while the tile of s is formed.
      if (want_dp) {
        load_tile<E, kDC, kCS>(chunk, static_cast<const S*>(in.q), in.cols, in.dim, col0, args.d0,
                               args.vec);
        cp_async_commit();
      }
      tile_products<E>(s_acc, st, in, row0, col0, args.vec);
    }
    float tile_sum1 = 0.0f;
    float tile_sum2 = 0.0f;
    form_g<E, kGS>(s_acc, t, epi, row_value, place, in, row0, col0, g_s, want_dp, tile_sum1,
                   tile_sum2);
    sum1 += tile_sum1;
    sum2 += tile_sum2;
    if (!want_dp) {
      continue;  // G is not needed beyond the sums
    }
    block_sync();
    accumulate_g_q<E, kNT, kGS, kCS>(acc, g_s, chunk, n_base);
    block_sync();
  }

  if (want_dp) {  // dp = g_out·t·scale·acc
    const int64_t d_end = args.d0 + kDC < in.dim ? args.d0 + kDC : in.dim;
    write_dp<E, kNT>(acc, *args.grad_output * t * epi.scale, row0, in.rows, in.dim, args.d0, d_end,
                     n_base, args.grad_p);
  }
  if (args.partials != nullptr) {
    sum1 = block_sum(sum1, scratch);
    sum2 = block_sum(sum2, scratch);
    if (threadIdx.x == 0) {
      args.partials[2 * int64_t{blockIdx.x}] = sum1 * epi.scale;
      args.partials[2 * int64_t{blockIdx.x} + 1] = sum2 * epi.scale;
    }
  }
}

// ---- launchers ----------------------------------------------------------------------------------

[[noreturn]] void bad_argument(const char* launcher, const std::string& what) {
  throw std::invalid_argument(std::string(launcher) + ": " + what);
}

std::size_t element_bytes(DType dtype) { return dtype == DType::kFloat32 ? 4 : 2; }

bool aligned16(const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; }

// Rows of p and q can go through 16-byte cp.async copies.
bool vector_loads(const PairOperands& in, DType dtype) {
  return (static_cast<std::size_t>(in.dim) * element_bytes(dtype)) % 16 == 0 && aligned16(in.p) &&
         aligned16(in.q);
}

template <class E, bool kResidentP>
constexpr int kStatsSmemBytes = kStagingBytes<E> + (kResidentP ? kResidentPBytes<E> : 0) +
                                (4 * kBN + 4 * kBN + 4 * kBM) * 4;
template <class E, bool kResidentP>
constexpr int kSigmoidSmemBytes = kStagingBytes<E> +
                                  (kResidentP ? kResidentPBytes<E> : 0) + kThreads * 8;
constexpr int kReduceSmemBytes = kThreads * 8;

template <class E, bool kResidentP>
void launch_stats_kernel(const PairOperands& in, DType dtype, float* part_rows, float* part_cols,
                         int64_t row_tiles, int64_t splits, void* stream) {
  constexpr int kSmem = kStatsSmemBytes<E, kResidentP>;
  DUET_SET_MAX_DYNAMIC_SMEM((softmax_stats_kernel<E, kResidentP>), kSmem);
  DUET_LAUNCH((softmax_stats_kernel<E, kResidentP>),
              dim3(static_cast<unsigned>(row_tiles), static_cast<unsigned>(splits)), dim3(kThreads),
              kSmem, stream, in, part_rows, part_cols, splits, vector_loads(in, dtype));
}

// LSE of the rows of s (and of its columns when lse_cols is not null) through partials.
template <class E>
void stats(const PairOperands& in, DType dtype, float* lse_rows, float* lse_cols, float* part_rows,
           float* part_cols, void* stream) {
  const int64_t splits = column_splits(in.rows, in.cols);
  const int64_t row_tiles = ceil_div(in.rows, kBM);
  float* cols = lse_cols != nullptr ? part_cols : nullptr;
  if (in.dim <= kResidentD<E>) {
    launch_stats_kernel<E, true>(in, dtype, part_rows, cols, row_tiles, splits, stream);
  } else {
    launch_stats_kernel<E, false>(in, dtype, part_rows, cols, row_tiles, splits, stream);
  }
  DUET_LAUNCH(merge_lse_kernel, dim3(static_cast<unsigned>(ceil_div(in.rows, kThreads))),
              dim3(kThreads), 0, stream, part_rows, splits, in.rows, lse_rows);
  if (lse_cols != nullptr) {
    DUET_LAUNCH(merge_lse_kernel, dim3(static_cast<unsigned>(ceil_div(in.cols, kThreads))),
                dim3(kThreads), 0, stream, part_cols, row_tiles, in.cols, lse_cols);
  }
}

template <class E>
void positives(const void* p, const void* q, int64_t n, int64_t dim, int64_t offset, float* pos,
               void* stream) {
  constexpr int kRowsPerBlock = kThreads / 32;
  DUET_LAUNCH(positives_kernel<E>, dim3(static_cast<unsigned>(ceil_div(n, kRowsPerBlock))),
              dim3(kThreads), 0, stream, p, q, n, dim, offset, pos);
}

// The widest column chunk of dp for a dtype (= the widest D kept resident): bounded by shared
// memory, A100's 163 KiB.
template <class E>
constexpr int kMaxChunk = kResidentD<E>;

template <class E, int kDC, bool kResident, class Epilogue>
void grad_launch(const GradArgs<Epilogue>& args, int64_t row_tiles, void* stream) {
  constexpr int kSmem = kGradSmemBytes<E, kDC, kResident>;
  DUET_SET_MAX_DYNAMIC_SMEM((grad_kernel<E, kDC, Epilogue, kResident>), kSmem);
  DUET_LAUNCH((grad_kernel<E, kDC, Epilogue, kResident>), dim3(static_cast<unsigned>(row_tiles)),
              dim3(kThreads), kSmem, stream, args);
}

// D up to kMaxChunk<E>: one launch, p resident and one q tile for both products, chunk width the
// smallest of 64..kMaxChunk that holds D. Beyond: dp in chunks of kMaxChunk<E> columns, one
// streaming launch each (each recomputes the tiles of s); the sums' partials (when `partials` is
// not null) come from the first. grad_p null: only the sums.
template <class E, class Epilogue>
void grad(const PairOperands& in, DType dtype, const Epilogue& epilogue, const float* grad_output,
          void* grad_p, double* partials, void* stream) {
  const int64_t row_tiles = ceil_div(in.rows, kBM);
  const bool vec = vector_loads(in, dtype);
  if (in.dim <= kMaxChunk<E>) {
    const GradArgs<Epilogue> args{in, epilogue, 0, grad_output, grad_p, partials, vec};
    if (in.dim <= 64) {
      grad_launch<E, 64, true>(args, row_tiles, stream);
    } else if (in.dim <= 128) {
      grad_launch<E, 128, true>(args, row_tiles, stream);
    } else if (in.dim <= 256) {
      grad_launch<E, 256, true>(args, row_tiles, stream);
    } else {
      grad_launch<E, kMaxChunk<E>, true>(args, row_tiles, stream);
    }
    return;
  }
  const int64_t chunk_end = grad_p == nullptr ? 1 : in.dim;
  for (int64_t d0 = 0; d0 < chunk_end; d0 += kMaxChunk<E>) {
    const GradArgs<Epilogue> args{
        in, epilogue, d0, grad_output, grad_p, d0 == 0 ? partials : nullptr, vec};
    grad_launch<E, kMaxChunk<E>, false>(args, row_tiles, stream);
  }
}

void sum_partials(const double* partials, int64_t count, int64_t stride, float factor,
                  const float* multiplier, float* out, float* out2, void* stream) {
  DUET_LAUNCH(sum_partials_kernel, dim3(1), dim3(kThreads), kReduceSmemBytes, stream, partials,
              count, stride, factor, multiplier, out, out2);
}

// The operands' checks shared by the four launchers.
void check_operands(const char* launcher, const LossOperands& in, bool siglip) {
  if (in.image_local == nullptr || in.text_local == nullptr || in.log_scale == nullptr) {
    bad_argument(launcher, "image_local, text_local and log_scale must be device pointers");
  }
  if (!in.one_process && (in.image_all == nullptr || in.text_all == nullptr)) {
    bad_argument(launcher, "image_all and text_all must be device pointers unless one_process");
  }
  if (siglip && in.bias == nullptr) {
    bad_argument(launcher, "bias must be a device pointer for SigLIP");
  }
  if (in.n < 1 || in.dim < 1) {
    bad_argument(launcher, "n and dim must be >= 1, got n " + std::to_string(in.n) + ", dim " +
                               std::to_string(in.dim));
  }
  if (in.one_process ? (in.m != in.n || in.offset != 0)
                     : (in.m < in.n || in.offset < 0 || in.offset > in.m - in.n)) {
    bad_argument(launcher,
                 "need m >= n and 0 <= offset <= m - n (m = n, offset 0 with "
                 "one_process), got n " +
                     std::to_string(in.n) + ", m " + std::to_string(in.m) + ", offset " +
                     std::to_string(in.offset));
  }
}

// Each (pointer, name) a launcher needs: not null.
void check_pointers(const char* launcher,
                    std::initializer_list<std::pair<const void*, const char*>> pointers) {
  for (const auto& [ptr, name] : pointers) {
    if (ptr == nullptr) {
      bad_argument(launcher, std::string(name) + " must be a device pointer, got null");
    }
  }
}

// p against q: the pair of one walk.
PairOperands pair(const void* p, int64_t rows, const void* q, int64_t cols,
                  const LossOperands& in) {
  return PairOperands{p, q, rows, cols, in.dim, in.log_scale};
}

// The text rows of the whole batch (the local ones in one process).
const void* all_text(const LossOperands& in) {
  return in.one_process ? in.text_local : in.text_all;
}

template <class E>
void infonce_forward_typed(const InfoNCEForwardParams& params, void* stream) {
  const LossOperands& in = params.in;
  unsigned char* ws = static_cast<unsigned char*>(params.workspace);
  const int64_t splits = column_splits(in.n, in.m);
  float* part_rows = reinterpret_cast<float*>(ws);
  ws += floats(splits * in.n);
  if (in.one_process) {  // S = t·X·Yᵀ: its rows give lse_a, its columns lse_b, in one walk
    float* part_cols = reinterpret_cast<float*>(ws);
    ws += floats(ceil_div(in.n, kBM) * in.n);
    float* pos = reinterpret_cast<float*>(ws);
    stats<E>(pair(in.image_local, in.n, in.text_local, in.n, in), in.dtype, params.lse_a,
             params.lse_b, part_rows, part_cols, stream);
    positives<E>(in.image_local, in.text_local, in.n, in.dim, 0, pos, stream);
    DUET_LAUNCH(infonce_loss_kernel, dim3(1), dim3(kThreads), kReduceSmemBytes, stream,
                params.lse_a, pos, params.lse_b, pos, in.n, in.log_scale, params.loss);
    return;
  }
  float* part_rows_b = reinterpret_cast<float*>(ws);
  ws += floats(splits * in.n);
  float* pos_a = reinterpret_cast<float*>(ws);
  ws += floats(in.n);
  float* pos_b = reinterpret_cast<float*>(ws);
  stats<E>(pair(in.image_local, in.n, in.text_all, in.m, in), in.dtype, params.lse_a, nullptr,
           part_rows, nullptr, stream);
  stats<E>(pair(in.text_local, in.n, in.image_all, in.m, in), in.dtype, params.lse_b, nullptr,
           part_rows_b, nullptr, stream);
  positives<E>(in.image_local, in.text_all, in.n, in.dim, in.offset, pos_a, stream);
  positives<E>(in.text_local, in.image_all, in.n, in.dim, in.offset, pos_b, stream);
  DUET_LAUNCH(infonce_loss_kernel, dim3(1), dim3(kThreads), kReduceSmemBytes, stream, params.lse_a,
              pos_a, params.lse_b, pos_b, in.n, in.log_scale, params.loss);
}

// G of one walk: w_rows·exp(s − lse_rows) + w_cols·exp(s − lse_cols) − w_pos·[q = p + offset],
// stored divided by its largest magnitude (w_rows + w_cols + w_pos) so it fits fp16.
SoftmaxEpilogue softmax_epilogue(const float* lse_rows, float w_rows, const float* lse_cols,
                                 float w_cols, float w_pos, int64_t pos_offset) {
  const float scale = w_rows + w_cols + w_pos;
  return SoftmaxEpilogue{lse_rows,      lse_cols, w_rows / scale, w_cols / scale,
                         w_pos / scale, scale,    pos_offset};
}

template <class E>
void infonce_backward_typed(const InfoNCEBackwardParams& params, void* stream) {
  const LossOperands& in = params.in;
  const auto w = static_cast<float>(0.5 / static_cast<double>(in.n));
  double* partials = static_cast<double*>(params.workspace);
  double* want_sums = params.d_log_scale != nullptr ? partials : nullptr;
  const int64_t row_tiles = ceil_div(in.n, kBM);
  if (in.one_process) {
    // G = w·(softmax over rows + softmax over columns) − 2w·I; dX = t·G·Y, dY = t·Gᵀ·X.
    if (params.d_image_local != nullptr || want_sums != nullptr) {
      grad<E>(pair(in.image_local, in.n, in.text_local, in.n, in), in.dtype,
              softmax_epilogue(params.lse_a, w, params.lse_b, w, 2 * w, 0), params.grad_output,
              params.d_image_local, want_sums, stream);
    }
    if (params.d_text_local != nullptr) {
      grad<E>(pair(in.text_local, in.n, in.image_local, in.n, in), in.dtype,
              softmax_epilogue(params.lse_b, w, params.lse_a, w, 2 * w, 0), params.grad_output,
              params.d_text_local, nullptr, stream);
    }
    if (want_sums != nullptr) {
      sum_partials(partials, row_tiles, 2, 1.0f, params.grad_output, params.d_log_scale, nullptr,
                   stream);
    }
    return;
  }
  // a = t·x·Yᵀ (softmax over its rows only) feeds x_local (rows) and Y_all (columns);
  // b = t·y·Xᵀ feeds y_local and X_all. Positives of row i at column offset + i.
  const SoftmaxEpilogue a_rows = softmax_epilogue(params.lse_a, w, nullptr, 0.0f, w, in.offset);
  const SoftmaxEpilogue a_cols = softmax_epilogue(nullptr, 0.0f, params.lse_a, w, w, -in.offset);
  const SoftmaxEpilogue b_rows = softmax_epilogue(params.lse_b, w, nullptr, 0.0f, w, in.offset);
  const SoftmaxEpilogue b_cols = softmax_epilogue(nullptr, 0.0f, params.lse_b, w, w, -in.offset);
  if (params.d_image_local != nullptr || want_sums != nullptr) {
    grad<E>(pair(in.image_local, in.n, in.text_all, in.m, in), in.dtype, a_rows, params.grad_output,
            params.d_image_local, want_sums, stream);
  }
  if (params.d_text_all != nullptr) {
    grad<E>(pair(in.text_all, in.m, in.image_local, in.n, in), in.dtype, a_cols, params.grad_output,
            params.d_text_all, nullptr, stream);
  }
  if (params.d_text_local != nullptr || want_sums != nullptr) {
    grad<E>(pair(in.text_local, in.n, in.image_all, in.m, in), in.dtype, b_rows, params.grad_output,
            params.d_text_local, want_sums != nullptr ? partials + 2 * row_tiles : nullptr, stream);
  }
  if (params.d_image_all != nullptr) {
    grad<E>(pair(in.image_all, in.m, in.text_local, in.n, in), in.dtype, b_cols, params.grad_output,
            params.d_image_all, nullptr, stream);
  }
  if (want_sums != nullptr) {
    sum_partials(partials, 2 * row_tiles, 2, 1.0f, params.grad_output, params.d_log_scale, nullptr,
                 stream);
  }
}

template <class E, bool kResidentP>
void launch_sigmoid_kernel(const PairOperands& xy, const LossOperands& in, double* partials,
                           int64_t row_tiles, int64_t splits, void* stream) {
  constexpr int kSmem = kSigmoidSmemBytes<E, kResidentP>;
  DUET_SET_MAX_DYNAMIC_SMEM((sigmoid_loss_kernel<E, kResidentP>), kSmem);
  DUET_LAUNCH((sigmoid_loss_kernel<E, kResidentP>),
              dim3(static_cast<unsigned>(row_tiles), static_cast<unsigned>(splits)), dim3(kThreads),
              kSmem, stream, xy, in.bias, in.offset, partials, splits, vector_loads(xy, in.dtype));
}

template <class E>
void siglip_forward_typed(const SigLipForwardParams& params, void* stream) {
  const LossOperands& in = params.in;
  const PairOperands xy = pair(in.image_local, in.n, all_text(in), in.m, in);
  const int64_t splits = column_splits(in.n, in.m);
  const int64_t row_tiles = ceil_div(in.n, kBM);
  double* partials = static_cast<double*>(params.workspace);
  if (in.dim <= kResidentD<E>) {
    launch_sigmoid_kernel<E, true>(xy, in, partials, row_tiles, splits, stream);
  } else {
    launch_sigmoid_kernel<E, false>(xy, in, partials, row_tiles, splits, stream);
  }
  sum_partials(partials, row_tiles * splits, 1, static_cast<float>(1.0 / static_cast<double>(in.n)),
               nullptr, params.loss, nullptr, stream);
}

template <class E>
void siglip_backward_typed(const SigLipBackwardParams& params, void* stream) {
  const LossOperands& in = params.in;
  const auto w = static_cast<float>(1.0 / static_cast<double>(in.n));
  const bool want_sums = params.d_log_scale != nullptr || params.d_logit_bias != nullptr;
  double* partials = static_cast<double*>(params.workspace);
  // G = w·(σ(s + b) − E): dx = t·G·y (rows), dy = t·Gᵀ·x (the same walk with x and y swapped).
  if (params.d_image_local != nullptr || want_sums) {
    grad<E>(pair(in.image_local, in.n, all_text(in), in.m, in), in.dtype,
            SigmoidEpilogue{in.bias, w, in.offset}, params.grad_output, params.d_image_local,
            want_sums ? partials : nullptr, stream);
  }
  if (params.d_text_all != nullptr) {
    grad<E>(pair(all_text(in), in.m, in.image_local, in.n, in), in.dtype,
            SigmoidEpilogue{in.bias, w, -in.offset}, params.grad_output, params.d_text_all, nullptr,
            stream);
  }
  if (want_sums) {
    sum_partials(partials, ceil_div(in.n, kBM), 2, 1.0f, params.grad_output, params.d_log_scale,
                 params.d_logit_bias, stream);
  }
}

template <class Params, template <class> class Typed>
void by_dtype(const Params& params, void* stream) {
  switch (params.in.dtype) {
    case DType::kBFloat16:
      return Typed<Bf16>::run(params, stream);
    case DType::kFloat16:
      return Typed<F16>::run(params, stream);
    case DType::kFloat32:
      return Typed<F32>::run(params, stream);
  }
  bad_argument("contrastive kernels", "unknown dtype");
}

template <class E>
struct InfoNCEForwardTyped {
  static void run(const InfoNCEForwardParams& p, void* s) { infonce_forward_typed<E>(p, s); }
};
template <class E>
struct InfoNCEBackwardTyped {
  static void run(const InfoNCEBackwardParams& p, void* s) { infonce_backward_typed<E>(p, s); }
};
template <class E>
struct SigLipForwardTyped {
  static void run(const SigLipForwardParams& p, void* s) { siglip_forward_typed<E>(p, s); }
};
template <class E>
struct SigLipBackwardTyped {
  static void run(const SigLipBackwardParams& p, void* s) { siglip_backward_typed<E>(p, s); }
};

}  // namespace

#if DUET_HOST_BUILD
namespace emulated {
#else
namespace gpu {
#endif

void infonce_forward(const InfoNCEForwardParams& params, void* stream) {
  check_operands("infonce_forward", params.in, false);
  check_pointers("infonce_forward", {{params.loss, "loss"},
                                     {params.lse_a, "lse_a"},
                                     {params.lse_b, "lse_b"},
                                     {params.workspace, "workspace"}});
  by_dtype<InfoNCEForwardParams, InfoNCEForwardTyped>(params, stream);
}

void infonce_backward(const InfoNCEBackwardParams& params, void* stream) {
  check_operands("infonce_backward", params.in, false);
  check_pointers("infonce_backward", {{params.lse_a, "lse_a"},
                                      {params.lse_b, "lse_b"},
                                      {params.grad_output, "grad_output"},
                                      {params.workspace, "workspace"}});
  by_dtype<InfoNCEBackwardParams, InfoNCEBackwardTyped>(params, stream);
}

void siglip_forward(const SigLipForwardParams& params, void* stream) {
  check_operands("siglip_forward", params.in, true);
  check_pointers("siglip_forward", {{params.loss, "loss"}, {params.workspace, "workspace"}});
  by_dtype<SigLipForwardParams, SigLipForwardTyped>(params, stream);
}

void siglip_backward(const SigLipBackwardParams& params, void* stream) {
  check_operands("siglip_backward", params.in, true);
  check_pointers("siglip_backward",
                 {{params.grad_output, "grad_output"}, {params.workspace, "workspace"}});
  by_dtype<SigLipBackwardParams, SigLipBackwardTyped>(params, stream);
}

#if DUET_HOST_BUILD
}  // namespace emulated
#else
}  // namespace gpu
#endif
}  // namespace duet::kernels
