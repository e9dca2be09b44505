#pragma once
// Launchers of the fused contrastive-loss kernels (kernels/contrastive.cu): raw device pointers,
// sizes and a stream; no LibTorch. src/losses/fused.cpp is the torch-facing op that checks
// tensors, allocates and calls these; docs/losses.md describes the design.
//
// The losses are those of src/losses (infonce.h, siglip.h) in the form every rank computes: its
// n local rows against the m gathered rows, positives at column offset + i; one process is
// n = m, offset 0 with `one_process` set (the *_all pointers are then not read).
//   InfoNCE: t = exp(log_scale), loss = ½ [ (1/n) Σ_i (LSE_j t·x_i·Y_j − t·x_i·Y_{offset+i})
//                                        + (1/n) Σ_i (LSE_j t·y_i·X_j − t·y_i·X_{offset+i}) ]
//   SigLIP:  loss = (1/n) Σ_i Σ_j softplus(−z_ij (t·x_i·y_j + b)), z = +1 at j = offset + i, else
//   −1
//            (x = image_local, y = text_all; text_local and image_all are not read)
// Invariants: no n×m matrix in global memory — tiles of the logits are formed on tensor cores
// and consumed in registers and shared memory; the workspace (caller-allocated, sized by the
// *_workspace_bytes functions) is O(n + m) plus at most O(m · n/64) partial statistics;
// results are deterministic (partials in fixed slots, reduced in a fixed order).
// Inputs bf16, fp16 or fp32 (fp32 products on tensor cores as 3×TF32, close to fp32 accuracy);
// statistics, sums and accumulation in fp32; gradients are written in the inputs' dtype.
//
// Two builds of the same launchers exist: `gpu` (nvcc, real CUDA; only with DUET_CUDA) and
// `emulated` (the host compiler on the host execution layer, kernels/host/, for tests on CPUs).
// Each launcher checks its parameters (std::invalid_argument naming the field) and every CUDA
// call (std::runtime_error with the expression, file and line).
#include <cstddef>
#include <cstdint>

namespace duet::kernels {

enum class DType { kFloat32, kFloat16, kBFloat16 };

struct LossOperands {
  const void* image_local = nullptr;  // [n, dim], row-major, contiguous, `dtype`
  const void* text_local = nullptr;   // [n, dim]
  const void* image_all = nullptr;    // [m, dim]; ignored with one_process
  const void* text_all = nullptr;     // [m, dim]; ignored with one_process
  int64_t n = 0;                      // >= 1
  int64_t m = 0;                      // >= n (= n with one_process)
  int64_t dim = 0;                    // >= 1
  int64_t offset = 0;                 // 0 <= offset <= m − n
  bool one_process = false;
  DType dtype = DType::kFloat32;
  const float* log_scale = nullptr;  // device scalar log t
  const float* bias = nullptr;       // device scalar b (SigLIP only)
};

struct InfoNCEForwardParams {
  LossOperands in;
  float* loss = nullptr;   // device scalar out
  float* lse_a = nullptr;  // [n] out: LSE_j t·x_i·Y_j (one process: the rows of S = t·X·Yᵀ)
  float* lse_b = nullptr;  // [n] out: LSE_j t·y_i·X_j (one process: the columns of S)
  void* workspace = nullptr;
};

struct InfoNCEBackwardParams {
  LossOperands in;
  const float* lse_a = nullptr;  // from the forward
  const float* lse_b = nullptr;
  const float* grad_output = nullptr;  // device scalar: the loss's upstream gradient
  // Outputs in `dtype`, each null to skip. One process: d_image_local and d_text_local are the
  // whole gradients [n, dim] and the *_all ones are not written.
  void* d_image_local = nullptr;  // [n, dim]
  void* d_text_local = nullptr;   // [n, dim]
  void* d_image_all = nullptr;    // [m, dim]
  void* d_text_all = nullptr;     // [m, dim]
  float* d_log_scale = nullptr;   // device scalar
  void* workspace = nullptr;
};

struct SigLipForwardParams {
  LossOperands in;
  float* loss = nullptr;
  void* workspace = nullptr;
};

struct SigLipBackwardParams {
  LossOperands in;
  const float* grad_output = nullptr;
  void* d_image_local = nullptr;  // [n, dim] (x)
  void* d_text_all = nullptr;     // [m, dim] (y; one process: [n, dim])
  float* d_log_scale = nullptr;
  float* d_logit_bias = nullptr;
  void* workspace = nullptr;
};

// ---- tiling shared by the launchers and the workspace sizes ----
constexpr int64_t kTileRows = 64;  // rows of p per thread block
constexpr int64_t kTileCols = 64;  // rows of q per step of a block's walk

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Column splits of the forward walks: enough blocks to fill a large GPU when there are few rows,
// never more than there are column tiles.
inline int64_t column_splits(int64_t rows, int64_t cols) {
  const int64_t row_tiles = ceil_div(rows, kTileRows);
  const int64_t col_tiles = ceil_div(cols, kTileCols);
  const int64_t splits = ceil_div(264, row_tiles);  // ~2 blocks per SM of a 132-SM H100
  return splits < 1 ? 1 : (splits > col_tiles ? col_tiles : splits);
}

inline std::size_t align16(std::size_t bytes) { return (bytes + 15) / 16 * 16; }

inline std::size_t floats(int64_t count) {
  return align16(static_cast<std::size_t>(count) * sizeof(float));
}
inline std::size_t doubles(int64_t count) {
  return align16(static_cast<std::size_t>(count) * sizeof(double));
}

// Forward: row partials [splits, n] per direction, the column partials [n/64, m] of the
// one-process walk, and the n positive logits per direction.
inline std::size_t infonce_forward_workspace_bytes(int64_t n, int64_t m, bool one_process) {
  const int64_t cols = one_process ? n : m;
  const std::size_t rows = floats(column_splits(n, cols) * n);
  if (one_process) {
    return rows + floats(ceil_div(n, kTileRows) * n) + floats(n);
  }
  return 2 * rows + 2 * floats(n);
}

// Backward: two partial sums per row tile of each rows walk (n/64 each, two walks when gathered).
inline std::size_t infonce_backward_workspace_bytes(int64_t n, int64_t m, bool one_process) {
  (void)m;
  return doubles(2 * ceil_div(n, kTileRows) * (one_process ? 1 : 2));
}

inline std::size_t siglip_forward_workspace_bytes(int64_t n, int64_t m, bool one_process) {
  const int64_t cols = one_process ? n : m;
  return doubles(ceil_div(n, kTileRows) * column_splits(n, cols));
}

inline std::size_t siglip_backward_workspace_bytes(int64_t n, int64_t m, bool one_process) {
  (void)m;
  (void)one_process;
  return doubles(2 * ceil_div(n, kTileRows));
}

#define DUET_CONTRASTIVE_LAUNCHERS                                          \
  void infonce_forward(const InfoNCEForwardParams& params, void* stream);   \
  void infonce_backward(const InfoNCEBackwardParams& params, void* stream); \
  void siglip_forward(const SigLipForwardParams& params, void* stream);     \
  void siglip_backward(const SigLipBackwardParams& params, void* stream);

namespace gpu {
DUET_CONTRASTIVE_LAUNCHERS
}  // namespace gpu
namespace emulated {
DUET_CONTRASTIVE_LAUNCHERS
}  // namespace emulated

#undef DUET_CONTRASTIVE_LAUNCHERS

}  // namespace duet::kernels
