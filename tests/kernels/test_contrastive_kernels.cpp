// The fused contrastive kernels (kernels/contrastive.cu), run from their own source on the host
// execution layer, against the float64 oracle of tests/losses: loss and every gradient of InfoNCE
// and SigLIP, one process and a rank's gathered form, bf16 / fp16 / fp32, awkward shapes (1, 7,
// 129, 300 rows; D = 8, 64, 520, 1152 and ones that are not whole 16-byte rows), scales 1..100,
// biases ±10. Outputs are poisoned (NaN) before each run, so an element no thread writes fails.
//
// Error bounds are derived, not tuned. The oracle runs on the same rounded inputs, so what is left
// is what the kernels round: each term g·k of a gradient carries a relative error e_G (G stored
// in the input precision u; s = t·x·y summed in fp32 over D, off by at most D·2^-24·t; exp, log,
// the 3×TF32 split) and the fp32 sum over M terms adds (M + 4)·2^-24 — componentwise at most
// (e_G + e_acc)·m with m the oracle's magnitude (Σ of |terms|). Where G cancels to nearly 0 at a
// positive (a confident match) its absolute fp32 error 2^-24·W adds an absolute term. Gradients
// are written in the input dtype: that rounding adds u·|want| and, for fp16's subnormals (below
// 2^-14), half their spacing, 2^-25. Every bound is doubled for slack. A wrong index or a missed
// tile is off by O(m), orders above these.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/contrastive_kernels.h"
#include "kernels/device.h"
#include "kernels/intrinsics.h"
#include "losses/loss_oracle_math.h"

namespace duet::kernels {
namespace {

using losses::testing::Matrix;
constexpr double kEps32 = 1.0 / (1 << 24);  // fp32 unit roundoff

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kBFloat16:
      return "bf16";
    case DType::kFloat16:
      return "fp16";
    case DType::kFloat32:
      return "fp32";
  }
  return "?";
}

// The relative rounding of G when stored in the input precision (and multiplied on tensor cores).
double storage_roundoff(DType dtype) {
  switch (dtype) {
    case DType::kBFloat16:
      return 1.0 / 256;  // 8 significant bits
    case DType::kFloat16:
      return 1.0 / 2048;  // 11
    case DType::kFloat32:
      return 4.0 / (1 << 21);  // the 3×TF32 split: residual below 2^-21 per product
  }
  return 1.0;
}

// Rows of one dtype as the kernels read them, and the same values in float64 for the oracle.
struct Rows {
  DType dtype = DType::kFloat32;
  int64_t rows = 0;
  int64_t dim = 0;
  std::vector<uint16_t> half;
  std::vector<float> full;
  Matrix values;

  const void* data() const {
    return dtype == DType::kFloat32 ? static_cast<const void*>(full.data())
                                    : static_cast<const void*>(half.data());
  }
};

double rounded(DType dtype, double x, uint16_t& half) {
  const auto f = static_cast<float>(x);
  switch (dtype) {
    case DType::kBFloat16:
      half = float_to_bf16_bits(f);
      return bf16_bits_to_float(half);
    case DType::kFloat16:
      half = float_to_f16_bits(f);
      return f16_bits_to_float(half);
    case DType::kFloat32:
      return f;
  }
  return 0.0;
}

// `count` L2-normalised random rows (as the towers give), rounded to `dtype`.
Rows random_rows(std::mt19937_64& rng, int64_t count, int64_t dim, DType dtype) {
  Rows r;
  r.dtype = dtype;
  r.rows = count;
  r.dim = dim;
  r.values = Matrix(count, dim);
  std::normal_distribution<double> normal;
  for (int64_t i = 0; i < count; ++i) {
    double norm = 0.0;
    std::vector<double> row(static_cast<size_t>(dim));
    for (double& v : row) {
      v = normal(rng);
      norm += v * v;
    }
    for (int64_t d = 0; d < dim; ++d) {
      uint16_t half = 0;
      const double value = rounded(dtype, row[static_cast<size_t>(d)] / std::sqrt(norm), half);
      r.values.at(i, d) = value;
      if (dtype == DType::kFloat32) {
        r.full.push_back(static_cast<float>(value));
      } else {
        r.half.push_back(half);
      }
    }
  }
  return r;
}

// Rows [begin, begin + count) of `all`, in their own buffer (as a rank's local tensor is).
Rows slice(const Rows& all, int64_t begin, int64_t count) {
  Rows r;
  r.dtype = all.dtype;
  r.rows = count;
  r.dim = all.dim;
  r.values = Matrix(count, all.dim);
  for (int64_t i = 0; i < count; ++i) {
    for (int64_t d = 0; d < all.dim; ++d) {
      r.values.at(i, d) = all.values.at(begin + i, d);
    }
  }
  const auto first = static_cast<size_t>(begin * all.dim);
  const auto size = static_cast<size_t>(count * all.dim);
  if (all.dtype == DType::kFloat32) {
    r.full.assign(all.full.begin() + first, all.full.begin() + first + size);
  } else {
    r.half.assign(all.half.begin() + first, all.half.begin() + first + size);
  }
  return r;
}

// A gradient output of `rows` × `dim` in `dtype`, poisoned with NaN.
struct Output {
  DType dtype;
  int64_t rows, dim;
  std::vector<uint16_t> half;
  std::vector<float> full;

  Output(DType d, int64_t r, int64_t c) : dtype(d), rows(r), dim(c) {
    if (dtype == DType::kFloat32) {
      full.assign(static_cast<size_t>(r * c), NAN);
    } else {
      half.assign(static_cast<size_t>(r * c), 0xFFFF);  // NaN in bf16 and fp16
    }
  }
  void* data() {
    return dtype == DType::kFloat32 ? static_cast<void*>(full.data())
                                    : static_cast<void*>(half.data());
  }
  Matrix values() const {
    Matrix m(rows, dim);
    for (size_t k = 0; k < m.data.size(); ++k) {
      switch (dtype) {
        case DType::kBFloat16:
          m.data[k] = bf16_bits_to_float(half[k]);
          break;
        case DType::kFloat16:
          m.data[k] = f16_bits_to_float(half[k]);
          break;
        case DType::kFloat32:
          m.data[k] = full[k];
          break;
      }
    }
    return m;
  }
};

struct Case {
  int64_t n = 1;
  int64_t m = 1;
  int64_t dim = 8;
  int64_t offset = 0;
  bool one_process = true;
  DType dtype = DType::kBFloat16;
  double log_scale = std::log(1 / 0.07);
  double bias = -10.0;

  std::string describe() const {
    return "n " + std::to_string(n) + ", m " + std::to_string(m) + ", D " + std::to_string(dim) +
           ", offset " + std::to_string(offset) + (one_process ? ", one process" : ", gathered") +
           ", " + dtype_name(dtype) + ", t " + std::to_string(std::exp(log_scale)) + ", b " +
           std::to_string(bias);
  }
};

// The batch of a case: local rows and, when gathered, all rows (local = all[offset, offset + n)).
struct Batch {
  Rows image_local, text_local, image_all, text_all;
  float log_scale = 0.0f;
  float bias = 0.0f;

  LossOperands operands(const Case& c) const {
    LossOperands in;
    in.image_local = image_local.data();
    in.text_local = text_local.data();
    if (!c.one_process) {
      in.image_all = image_all.data();
      in.text_all = text_all.data();
    }
    in.n = c.n;
    in.m = c.m;
    in.dim = c.dim;
    in.offset = c.offset;
    in.one_process = c.one_process;
    in.dtype = c.dtype;
    in.log_scale = &log_scale;
    in.bias = &bias;
    return in;
  }
};

Batch make_batch(const Case& c, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Batch b;
  b.image_all = random_rows(rng, c.m, c.dim, c.dtype);
  b.text_all = random_rows(rng, c.m, c.dim, c.dtype);
  b.image_local = c.one_process ? b.image_all : slice(b.image_all, c.offset, c.n);
  b.text_local = c.one_process ? b.text_all : slice(b.text_all, c.offset, c.n);
  // The scalars as the kernels read them (float); the oracle takes the same values.
  b.log_scale = static_cast<float>(c.log_scale);
  b.bias = static_cast<float>(c.bias);
  return b;
}

// The rounding of a gradient written in `dtype`: relative u (round to nearest: u/2, doubled) and
// fp16's subnormal spacing.
double output_rounding(DType dtype, double value) {
  const double subnormal = dtype == DType::kFloat16 ? 1.0 / (1 << 25) : 0.0;
  return (dtype == DType::kFloat32 ? kEps32 : storage_roundoff(dtype)) * std::abs(value) +
         subnormal;
}

// Checks |got − want| <= rel·m + abs + the output rounding componentwise; prints the worst
// element and the first few beyond the bound.
void expect_within(const std::string& what, DType dtype, const Matrix& got, const Matrix& want,
                   const Matrix& magnitude, double rel, double abs) {
  double worst_ratio = 0.0;
  std::string first;
  int bad = 0;
  for (size_t k = 0; k < want.data.size(); ++k) {
    const double bound = rel * magnitude.data[k] + abs + 2.0 * output_rounding(dtype, want.data[k]);
    const double err = std::abs(got.data[k] - want.data[k]);
    const double ratio = err / bound;
    if (!(ratio <= worst_ratio)) {
      worst_ratio = std::isnan(ratio) ? INFINITY : ratio;
    }
    if (!(err <= bound) && bad < 4) {
      const auto at = static_cast<int64_t>(k);
      first += "(" + std::to_string(at / want.cols) + ", " + std::to_string(at % want.cols) +
               ") got " + std::to_string(got.data[k]) + " want " + std::to_string(want.data[k]) +
               " bound " + std::to_string(bound) + "; ";
      ++bad;
    }
  }
  INFO(what << ": worst error / bound " << worst_ratio << " " << first);
  CHECK(worst_ratio <= 1.0);
}

void expect_scalar(const std::string& what, double got, double want, double bound) {
  INFO(what << ": got " << got << " want " << want << " error " << std::abs(got - want) << " bound "
            << bound);
  CHECK(std::abs(got - want) <= bound);
}

// Relative error of one G term (see the file's comment).
double term_error(const Case& c, double t) {
  return storage_roundoff(c.dtype) + 2.0 * static_cast<double>(c.dim) * kEps32 * t +
         3.0 * t * storage_roundoff(DType::kFloat32) + 8.0 * kEps32;
}

void run_infonce(const Case& c, uint64_t seed) {
  CAPTURE(c.describe());
  const Batch b = make_batch(c, seed);
  const auto o = losses::testing::infonce_oracle(
      b.image_local.values, b.text_local.values,
      c.one_process ? b.image_local.values : b.image_all.values,
      c.one_process ? b.text_local.values : b.text_all.values, c.offset, b.log_scale);

  const LossOperands in = b.operands(c);
  std::vector<unsigned char> forward_space(
      infonce_forward_workspace_bytes(c.n, c.m, c.one_process));
  float loss = NAN;
  std::vector<float> lse_a(static_cast<size_t>(c.n), NAN);
  std::vector<float> lse_b(static_cast<size_t>(c.n), NAN);
  emulated::infonce_forward({in, &loss, lse_a.data(), lse_b.data(), forward_space.data()}, nullptr);

  const float grad_output = 0.75f;  // an upstream gradient that is not 1
  Output d_image_local(c.dtype, c.n, c.dim), d_text_local(c.dtype, c.n, c.dim);
  Output d_image_all(c.dtype, c.m, c.dim), d_text_all(c.dtype, c.m, c.dim);
  float d_log_scale = NAN;
  std::vector<unsigned char> backward_space(
      infonce_backward_workspace_bytes(c.n, c.m, c.one_process));
  InfoNCEBackwardParams back;
  back.in = in;
  back.lse_a = lse_a.data();
  back.lse_b = lse_b.data();
  back.grad_output = &grad_output;
  back.d_image_local = d_image_local.data();
  back.d_text_local = d_text_local.data();
  if (!c.one_process) {
    back.d_image_all = d_image_all.data();
    back.d_text_all = d_text_all.data();
  }
  back.d_log_scale = &d_log_scale;
  back.workspace = backward_space.data();
  emulated::infonce_backward(back, nullptr);

  const double t = std::exp(double{b.log_scale});
  const double e = 2.0 * (term_error(c, t) + (static_cast<double>(c.m) + 4.0) * kEps32);
  const double w_total = 2.0 / static_cast<double>(c.n);  // w_rows + w_cols + w_pos <= 4 / (2n)
  const double abs = 2.0 * 4.0 * kEps32 * t * w_total * grad_output;
  auto scaled = [&](Matrix m, double factor) {
    for (double& v : m.data) {
      v *= factor;
    }
    return m;
  };
  const double go = grad_output;
  const double loss_bound =
      2.0 * (2.0 * static_cast<double>(c.dim) * kEps32 * t +
             3.0 * t * storage_roundoff(DType::kFloat32) + 8.0 * kEps32 * (std::abs(o.loss) + t));
  expect_scalar("loss", loss, o.loss, loss_bound);
  if (c.one_process) {
    // One process: the local gradients are the whole ones (oracle: local + all parts).
    expect_within("d image", c.dtype, d_image_local.values(),
                  scaled(losses::testing::add(o.d_image_local, o.d_image_all), go),
                  scaled(losses::testing::add(o.m_image_local, o.m_image_all), go), e, 2 * abs);
    expect_within("d text", c.dtype, d_text_local.values(),
                  scaled(losses::testing::add(o.d_text_local, o.d_text_all), go),
                  scaled(losses::testing::add(o.m_text_local, o.m_text_all), go), e, 2 * abs);
  } else {
    expect_within("d image_local", c.dtype, d_image_local.values(), scaled(o.d_image_local, go),
                  scaled(o.m_image_local, go), e, abs);
    expect_within("d text_local", c.dtype, d_text_local.values(), scaled(o.d_text_local, go),
                  scaled(o.m_text_local, go), e, abs);
    expect_within("d image_all", c.dtype, d_image_all.values(), scaled(o.d_image_all, go),
                  scaled(o.m_image_all, go), e, abs);
    expect_within("d text_all", c.dtype, d_text_all.values(), scaled(o.d_text_all, go),
                  scaled(o.m_text_all, go), e, abs);
  }
  const double scale_bound =
      go * (2.0 * (term_error(c, t) + 32.0 * kEps32) * o.m_logit_scale + 4.0 * kEps32 * t);
  expect_scalar("d log t", d_log_scale, go * o.d_logit_scale, scale_bound);
}

void run_siglip(const Case& c, uint64_t seed) {
  CAPTURE(c.describe());
  const Batch b = make_batch(c, seed);
  const Matrix& y = c.one_process ? b.text_local.values : b.text_all.values;
  const auto o =
      losses::testing::siglip_oracle(b.image_local.values, y, c.offset, b.log_scale, b.bias);

  const LossOperands in = b.operands(c);
  std::vector<unsigned char> forward_space(siglip_forward_workspace_bytes(c.n, c.m, c.one_process));
  float loss = NAN;
  emulated::siglip_forward({in, &loss, forward_space.data()}, nullptr);

  const float grad_output = 1.5f;
  Output d_x(c.dtype, c.n, c.dim), d_y(c.dtype, c.m, c.dim);
  float d_log_scale = NAN;
  float d_bias = NAN;
  std::vector<unsigned char> backward_space(
      siglip_backward_workspace_bytes(c.n, c.m, c.one_process));
  emulated::siglip_backward(
      {in, &grad_output, d_x.data(), d_y.data(), &d_log_scale, &d_bias, backward_space.data()},
      nullptr);

  const double t = std::exp(double{b.log_scale});
  const double go = grad_output;
  const double e = 2.0 * (term_error(c, t) + (static_cast<double>(c.m) + 4.0) * kEps32);
  const double w = 1.0 / static_cast<double>(c.n);
  const double abs = 2.0 * 4.0 * kEps32 * t * w * go;
  auto scaled = [&](Matrix m) {
    for (double& v : m.data) {
      v *= go;
    }
    return m;
  };
  // Σ softplus moves by σ·Δs per term: (1/n)·Σσ <= the magnitude of d b (Σ|G|).
  const double loss_bound =
      2.0 *
          ((static_cast<double>(c.dim) * kEps32 * t + 3.0 * t * storage_roundoff(DType::kFloat32)) *
               o.m_logit_bias +
           16.0 * kEps32 * std::abs(o.loss)) +
      1e-30;
  expect_scalar("loss", loss, o.loss, loss_bound);
  expect_within("d x", c.dtype, d_x.values(), scaled(o.d_x), scaled(o.m_x), e, abs);
  expect_within("d y", c.dtype, d_y.values(), scaled(o.d_y), scaled(o.m_y), e, abs);
  const double sum_error = 2.0 * (term_error(c, t) + 32.0 * kEps32);
  expect_scalar("d log t", d_log_scale, go * o.d_logit_scale,
                go * (sum_error * o.m_logit_scale + 4.0 * kEps32 * t));
  expect_scalar("d b", d_bias, go * o.d_logit_bias,
                go * (sum_error * o.m_logit_bias + 4.0 * kEps32));
}

Case one_process(int64_t n, int64_t dim, DType dtype, double t = 1 / 0.07) {
  Case c;
  c.n = c.m = n;
  c.dim = dim;
  c.dtype = dtype;
  c.log_scale = std::log(t);
  return c;
}

Case gathered(int64_t n, int64_t m, int64_t offset, int64_t dim, DType dtype, double t = 1 / 0.07) {
  Case c = one_process(n, dim, dtype, t);
  c.m = m;
  c.offset = offset;
  c.one_process = false;
  return c;
}

constexpr DType kBf16 = DType::kBFloat16;
constexpr DType kFp16 = DType::kFloat16;
constexpr DType kFp32 = DType::kFloat32;

// Each size of the matrix appears with every dtype somewhere; the large D = 1152 (SigLIP so400m)
// and the 300-row cases are few because emulation runs every lane of every mma.
TEST_CASE("fused InfoNCE in one process against the float64 oracle", "[kernels][infonce]") {
  for (const Case& c : {one_process(1, 8, kBf16), one_process(7, 64, kFp16, 1.0),
                        one_process(64, 8, kFp32, 100.0), one_process(129, 520, kBf16),
                        one_process(300, 64, kFp16, 100.0), one_process(7, 1152, kFp32),
                        one_process(129, 64, kFp32), one_process(64, 1152, kBf16, 100.0)}) {
    run_infonce(c, 11);
  }
}

TEST_CASE("fused InfoNCE for a rank's rows against the gathered batch", "[kernels][infonce]") {
  for (const Case& c :
       {gathered(1, 7, 6, 8, kBf16), gathered(7, 129, 64, 64, kFp32, 1.0),
        gathered(64, 300, 129, 520, kFp16), gathered(129, 300, 171, 8, kBf16, 100.0),
        gathered(7, 300, 0, 1152, kBf16), gathered(64, 129, 65, 64, kFp32, 100.0)}) {
    run_infonce(c, 12);
  }
}

TEST_CASE("fused SigLIP in one process and gathered against the float64 oracle",
          "[kernels][siglip]") {
  std::vector<Case> cases = {
      one_process(1, 8, kFp32, 10.0),           one_process(7, 520, kBf16, 100.0),
      one_process(129, 64, kFp16, 1.0),         one_process(300, 8, kBf16, 10.0),
      gathered(7, 300, 293, 64, kFp32, 10.0),   gathered(64, 129, 0, 1152, kBf16, 10.0),
      gathered(129, 300, 64, 520, kFp16, 100.0)};
  for (size_t i = 0; i < cases.size(); ++i) {
    cases[i].bias = i % 2 == 0 ? -10.0 : 10.0;
    run_siglip(cases[i], 13 + i);
  }
}

TEST_CASE("rows that are not whole 16-byte chunks take the element-wise loads",
          "[kernels][infonce][siglip]") {
  // D = 7 (bf16: 14-byte rows) and D = 100 (fp16: 200 bytes), D = 13 (fp32: 52 bytes).
  for (const Case& c : {one_process(9, 7, kBf16), gathered(5, 70, 33, 100, kFp16),
                        one_process(65, 13, kFp32, 100.0)}) {
    run_infonce(c, 21);
    run_siglip(c, 22);
  }
}

TEST_CASE("a misaligned start takes the element-wise loads too", "[kernels][infonce]") {
  // Rows of a 16-byte multiple, but the matrix itself starts 2 bytes off alignment.
  const Case c = one_process(33, 64, kBf16);
  Batch b = make_batch(c, 31);
  std::vector<uint16_t> shifted_x(b.image_local.half.size() + 1);
  std::vector<uint16_t> shifted_y(b.text_local.half.size() + 1);
  std::memcpy(shifted_x.data() + 1, b.image_local.half.data(), b.image_local.half.size() * 2);
  std::memcpy(shifted_y.data() + 1, b.text_local.half.data(), b.text_local.half.size() * 2);
  LossOperands in = b.operands(c);
  LossOperands shifted = in;
  shifted.image_local = shifted_x.data() + 1;
  shifted.text_local = shifted_y.data() + 1;
  std::vector<unsigned char> space(infonce_forward_workspace_bytes(c.n, c.m, true));
  float loss = NAN, loss_shifted = NAN;
  std::vector<float> a(33), bb(33);
  emulated::infonce_forward({in, &loss, a.data(), bb.data(), space.data()}, nullptr);
  emulated::infonce_forward({shifted, &loss_shifted, a.data(), bb.data(), space.data()}, nullptr);
  CHECK(loss_shifted == loss);  // same values, same order of sums: bitwise equal
}

TEST_CASE("gradients that are not asked for are not written", "[kernels][infonce][siglip]") {
  const Case c = gathered(7, 64, 7, 64, kBf16);
  const Batch b = make_batch(c, 41);
  const LossOperands in = b.operands(c);
  std::vector<unsigned char> space(infonce_forward_workspace_bytes(c.n, c.m, false));
  float loss = NAN;
  std::vector<float> lse_a(7), lse_b(7);
  emulated::infonce_forward({in, &loss, lse_a.data(), lse_b.data(), space.data()}, nullptr);
  const float go = 1.0f;
  float d_log_scale = NAN;
  std::vector<unsigned char> back_space(infonce_backward_workspace_bytes(c.n, c.m, false));
  InfoNCEBackwardParams back;
  back.in = in;
  back.lse_a = lse_a.data();
  back.lse_b = lse_b.data();
  back.grad_output = &go;
  back.d_log_scale = &d_log_scale;  // only the temperature's gradient
  back.workspace = back_space.data();
  emulated::infonce_backward(back, nullptr);
  const auto o =
      losses::testing::infonce_oracle(b.image_local.values, b.text_local.values, b.image_all.values,
                                      b.text_all.values, c.offset, b.log_scale);
  const double t = std::exp(double{b.log_scale});
  expect_scalar("d log t alone", d_log_scale, o.d_logit_scale,
                2.0 * (term_error(c, t) + 32.0 * kEps32) * o.m_logit_scale + 4.0 * kEps32 * t);
}

TEST_CASE("bad launcher arguments are refused naming the field", "[kernels]") {
  const Case c = one_process(4, 8, kBf16);
  const Batch b = make_batch(c, 51);
  LossOperands in = b.operands(c);
  float loss = 0.0f;
  std::vector<float> lse(4);
  std::vector<unsigned char> space(infonce_forward_workspace_bytes(4, 4, true));
  InfoNCEForwardParams params{in, &loss, lse.data(), lse.data(), space.data()};
  params.workspace = nullptr;
  CHECK_THROWS_WITH(emulated::infonce_forward(params, nullptr),
                    Catch::Contains("infonce_forward: workspace must be a device pointer"));
  params.workspace = space.data();
  params.in.offset = 1;
  CHECK_THROWS_WITH(emulated::infonce_forward(params, nullptr), Catch::Contains("offset 1"));
  params.in = in;
  params.in.one_process = false;
  params.in.image_all = nullptr;
  CHECK_THROWS_WITH(emulated::infonce_forward(params, nullptr),
                    Catch::Contains("image_all and text_all must be device pointers"));
  SigLipForwardParams siglip{in, &loss, space.data()};
  siglip.in.bias = nullptr;
  CHECK_THROWS_WITH(emulated::siglip_forward(siglip, nullptr), Catch::Contains("bias"));
}

}  // namespace
}  // namespace duet::kernels
