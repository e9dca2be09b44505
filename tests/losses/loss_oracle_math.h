#pragma once
// Independent float64 oracles for the contrastive losses: plain loops over std::vector<double>,
// no ATen arithmetic, with the gradients derived by hand. They define what the reference, tiled
// and fused implementations must compute, in the general local-rows × gathered-columns form.
// Torch-free, so that the kernel tests (tests/kernels, also built with AddressSanitizer) use the
// same oracle as the loss tests; loss_oracle.h adds the tensor conversions.
#include <cstdint>
#include <string>
#include <vector>

namespace duet::losses::testing {

// Row-major float64 matrix (a scalar is 1×1).
struct Matrix {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<double> data;

  Matrix() = default;
  Matrix(int64_t r, int64_t c) : rows(r), cols(c), data(static_cast<size_t>(r * c), 0.0) {}
  double& at(int64_t i, int64_t j) { return data[static_cast<size_t>(i * cols + j)]; }
  double at(int64_t i, int64_t j) const { return data[static_cast<size_t>(i * cols + j)]; }
};

Matrix add(const Matrix& a, const Matrix& b);

// Each gradient comes with its magnitude m_*: the same sum over the absolute values of its
// terms (Σ_j |t·g_ij·k_jd|, Σ |g·s|). A computation that rounds each term by a relative u is off
// by at most u·m, whatever cancellation the sum has: the yardstick for componentwise error bounds.
struct InfoNCEOracle {
  double loss = 0.0;
  Matrix d_image_local, d_text_local, d_image_all, d_text_all;  // d loss / d input
  double d_logit_scale = 0.0;                                   // d loss / d log t
  Matrix m_image_local, m_text_local, m_image_all, m_text_all;
  double m_logit_scale = 0.0;
};

// ½ [mean_i (LSE_j t·x_i·Y_j − t·x_i·Y_{offset+i}) + mean_i (LSE_j t·y_i·X_j − t·y_i·X_{offset+i})]
InfoNCEOracle infonce_oracle(const Matrix& image_local, const Matrix& text_local,
                             const Matrix& image_all, const Matrix& text_all, int64_t offset,
                             double logit_scale);

struct SigLipOracle {
  double loss = 0.0;
  Matrix d_x, d_y;
  double d_logit_scale = 0.0;
  double d_logit_bias = 0.0;
  Matrix m_x, m_y;  // magnitudes, as for InfoNCE
  double m_logit_scale = 0.0;
  double m_logit_bias = 0.0;
};

// (1/n) Σ_i Σ_j softplus(−z_ij (t·x_i·y_j + b)), z = +1 at j = offset + i, −1 elsewhere.
SigLipOracle siglip_oracle(const Matrix& x_local, const Matrix& y_all, int64_t offset,
                           double logit_scale, double logit_bias);

// Normwise comparison: max |got − want| and that over max(max |want|, floor).
struct Difference {
  double max_abs = 0.0;
  double max_rel = 0.0;
  int64_t worst = -1;            // flat index of the largest |got − want|
  std::string first_mismatches;  // "(i, j) got vs want" for the first few entries beyond tol
};
Difference difference(const Matrix& got, const Matrix& want, double floor = 1e-300,
                      double rel_tol = 0.0);

}  // namespace duet::losses::testing
