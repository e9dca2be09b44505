#include "losses/loss_oracle_math.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace duet::losses::testing {
namespace {

double dot_rows(const Matrix& a, int64_t i, const Matrix& b, int64_t j) {
  double sum = 0.0;
  for (int64_t d = 0; d < a.cols; ++d) {
    sum += a.at(i, d) * b.at(j, d);
  }
  return sum;
}

// softplus(v) = log(1 + e^v), stable for any v.
double softplus(double v) { return std::max(v, 0.0) + std::log1p(std::exp(-std::abs(v))); }

double sigmoid(double v) {
  return v >= 0 ? 1.0 / (1.0 + std::exp(-v)) : std::exp(v) / (1.0 + std::exp(v));
}

// Where one direction's results go: the gradients and their magnitudes (the same sums over
// absolute values of the terms).
struct DirectionOut {
  Matrix& dq;
  Matrix& dk;
  Matrix& mq;
  Matrix& mk;
};

// One InfoNCE direction: rows of `q` [n, D] against `k` [M, D], positives at offset + i, each
// row's cross-entropy weighted by `weight`. Adds to the loss and to dq, dk, d log t (and to
// their magnitudes).
void infonce_direction(const Matrix& q, const Matrix& k, int64_t offset, double t, double weight,
                       double& loss, DirectionOut out, double& d_log_t, double& m_log_t) {
  std::vector<double> s(static_cast<size_t>(k.rows));
  for (int64_t i = 0; i < q.rows; ++i) {
    double max = -INFINITY;
    for (int64_t j = 0; j < k.rows; ++j) {
      s[j] = t * dot_rows(q, i, k, j);
      max = std::max(max, s[j]);
    }
    double sum = 0.0;
    for (int64_t j = 0; j < k.rows; ++j) {
      sum += std::exp(s[j] - max);
    }
    const double lse = max + std::log(sum);
    loss += weight * (lse - s[offset + i]);
    for (int64_t j = 0; j < k.rows; ++j) {
      // ∂loss/∂s_ij = weight·(softmax_ij − [j = offset + i]); s_ij = t·q_i·k_j.
      const double g = weight * (std::exp(s[j] - lse) - (j == offset + i ? 1.0 : 0.0));
      d_log_t += g * s[j];
      m_log_t += std::abs(g * s[j]);
      for (int64_t d = 0; d < q.cols; ++d) {
        out.dq.at(i, d) += t * g * k.at(j, d);
        out.dk.at(j, d) += t * g * q.at(i, d);
        out.mq.at(i, d) += std::abs(t * g * k.at(j, d));
        out.mk.at(j, d) += std::abs(t * g * q.at(i, d));
      }
    }
  }
}

}  // namespace

Matrix add(const Matrix& a, const Matrix& b) {
  Matrix out = a;
  for (size_t i = 0; i < out.data.size(); ++i) {
    out.data[i] += b.data[i];
  }
  return out;
}

InfoNCEOracle infonce_oracle(const Matrix& image_local, const Matrix& text_local,
                             const Matrix& image_all, const Matrix& text_all, int64_t offset,
                             double logit_scale) {
  const double t = std::exp(logit_scale);
  const double weight = 0.5 / static_cast<double>(image_local.rows);
  InfoNCEOracle o;
  o.d_image_local = Matrix(image_local.rows, image_local.cols);
  o.d_text_local = Matrix(text_local.rows, text_local.cols);
  o.d_image_all = Matrix(image_all.rows, image_all.cols);
  o.d_text_all = Matrix(text_all.rows, text_all.cols);
  o.m_image_local = o.d_image_local;
  o.m_text_local = o.d_text_local;
  o.m_image_all = o.d_image_all;
  o.m_text_all = o.d_text_all;
  infonce_direction(image_local, text_all, offset, t, weight, o.loss,
                    {o.d_image_local, o.d_text_all, o.m_image_local, o.m_text_all}, o.d_logit_scale,
                    o.m_logit_scale);
  infonce_direction(text_local, image_all, offset, t, weight, o.loss,
                    {o.d_text_local, o.d_image_all, o.m_text_local, o.m_image_all}, o.d_logit_scale,
                    o.m_logit_scale);
  return o;
}

SigLipOracle siglip_oracle(const Matrix& x_local, const Matrix& y_all, int64_t offset,
                           double logit_scale, double logit_bias) {
  const double t = std::exp(logit_scale);
  const double inv_n = 1.0 / static_cast<double>(x_local.rows);
  SigLipOracle o;
  o.d_x = Matrix(x_local.rows, x_local.cols);
  o.d_y = Matrix(y_all.rows, y_all.cols);
  o.m_x = o.d_x;
  o.m_y = o.d_y;
  for (int64_t i = 0; i < x_local.rows; ++i) {
    for (int64_t j = 0; j < y_all.rows; ++j) {
      const double z = j == offset + i ? 1.0 : -1.0;
      const double u = t * dot_rows(x_local, i, y_all, j);
      const double s = u + logit_bias;
      o.loss += inv_n * softplus(-z * s);
      // d softplus(−z·s)/ds = −z·σ(−z·s)
      const double g = -z * sigmoid(-z * s) * inv_n;
      o.d_logit_scale += g * u;
      o.d_logit_bias += g;
      o.m_logit_scale += std::abs(g * u);
      o.m_logit_bias += std::abs(g);
      for (int64_t d = 0; d < x_local.cols; ++d) {
        o.d_x.at(i, d) += t * g * y_all.at(j, d);
        o.d_y.at(j, d) += t * g * x_local.at(i, d);
        o.m_x.at(i, d) += std::abs(t * g * y_all.at(j, d));
        o.m_y.at(j, d) += std::abs(t * g * x_local.at(i, d));
      }
    }
  }
  return o;
}

Difference difference(const Matrix& got, const Matrix& want, double floor, double rel_tol) {
  Difference diff;
  double scale = floor;
  for (double w : want.data) {
    scale = std::max(scale, std::abs(w));
  }
  int reported = 0;
  for (size_t k = 0; k < want.data.size(); ++k) {
    const double err = std::abs(got.data[k] - want.data[k]);
    if (!(err <= diff.max_abs)) {  // also catches NaN
      diff.max_abs = std::isnan(err) ? INFINITY : err;
      diff.worst = static_cast<int64_t>(k);
    }
    if (rel_tol > 0 && !(err <= rel_tol * scale) && reported < 5) {
      diff.first_mismatches +=
          fmt::format("({}, {}) got {:.17g} want {:.17g}; ", static_cast<int64_t>(k) / want.cols,
                      static_cast<int64_t>(k) % want.cols, got.data[k], want.data[k]);
      ++reported;
    }
  }
  diff.max_rel = diff.max_abs / scale;
  return diff;
}

}  // namespace duet::losses::testing
