#include "contrastive_checks.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/device.h"
#include "kernels/intrinsics.h"
#include "losses/loss_oracle_math.h"

namespace duet::kernels::testing {
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
  std::size_t bytes() const {
    return dtype == DType::kFloat32 ? full.size() * sizeof(float) : half.size() * sizeof(uint16_t);
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

// The batch of a case: local rows and, when gathered, all rows (local = all[offset, offset + n)).
struct Batch {
  Rows image_local, text_local, image_all, text_all;
  float log_scale = 0.0f;
  float bias = 0.0f;
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

// The backend's memory a check uses, released at the end of the check.
class Memory {
 public:
  explicit Memory(const Backend& backend) : backend_(backend) {}
  ~Memory() {
    for (void* p : owned_) {
      backend_.release(p);
    }
  }
  Memory(const Memory&) = delete;
  Memory& operator=(const Memory&) = delete;

  void* raw(std::size_t bytes) {
    owned_.push_back(backend_.allocate(bytes > 0 ? bytes : 1));
    return owned_.back();
  }
  void* copy(const void* host, std::size_t bytes) {
    void* device = raw(bytes);
    backend_.upload(device, host, bytes);
    return device;
  }
  float* scalar(float value) { return static_cast<float*>(copy(&value, sizeof(float))); }
  // `count` floats, NaN until a kernel writes them.
  float* poisoned_floats(int64_t count) {
    const std::vector<float> nan(static_cast<std::size_t>(count), NAN);
    return static_cast<float*>(copy(nan.data(), nan.size() * sizeof(float)));
  }
  std::vector<float> read_floats(const float* device, int64_t count) {
    std::vector<float> host(static_cast<std::size_t>(count));
    backend_.download(host.data(), device, host.size() * sizeof(float));
    return host;
  }
  float read_float(const float* device) { return read_floats(device, 1)[0]; }

 private:
  const Backend& backend_;
  std::vector<void*> owned_;
};

// A gradient output of `rows` × `dim` in `dtype`, poisoned with NaN, read back as float64.
class Output {
 public:
  Output(Memory& memory, DType dtype, int64_t rows, int64_t dim)
      : dtype_(dtype), rows_(rows), dim_(dim) {
    const auto count = static_cast<std::size_t>(rows * dim);
    if (dtype == DType::kFloat32) {
      const std::vector<float> nan(count, NAN);
      device_ = memory.copy(nan.data(), count * sizeof(float));
    } else {
      const std::vector<uint16_t> nan(count, 0xFFFF);  // NaN in bf16 and fp16
      device_ = memory.copy(nan.data(), count * sizeof(uint16_t));
    }
  }
  void* data() const { return device_; }
  Matrix values(const Backend& backend) const {
    Matrix m(rows_, dim_);
    const auto count = m.data.size();
    if (dtype_ == DType::kFloat32) {
      std::vector<float> host(count);
      backend.download(host.data(), device_, count * sizeof(float));
      std::copy(host.begin(), host.end(), m.data.begin());
      return m;
    }
    std::vector<uint16_t> host(count);
    backend.download(host.data(), device_, count * sizeof(uint16_t));
    for (std::size_t k = 0; k < count; ++k) {
      m.data[k] =
          dtype_ == DType::kBFloat16 ? bf16_bits_to_float(host[k]) : f16_bits_to_float(host[k]);
    }
    return m;
  }

 private:
  DType dtype_;
  int64_t rows_, dim_;
  void* device_ = nullptr;
};

// The case's operands in the backend's memory.
LossOperands operands(Memory& memory, const Case& c, const Batch& b) {
  LossOperands in;
  in.image_local = memory.copy(b.image_local.data(), b.image_local.bytes());
  in.text_local = memory.copy(b.text_local.data(), b.text_local.bytes());
  if (!c.one_process) {
    in.image_all = memory.copy(b.image_all.data(), b.image_all.bytes());
    in.text_all = memory.copy(b.text_all.data(), b.text_all.bytes());
  }
  in.n = c.n;
  in.m = c.m;
  in.dim = c.dim;
  in.offset = c.offset;
  in.one_process = c.one_process;
  in.dtype = c.dtype;
  in.log_scale = memory.scalar(b.log_scale);
  in.bias = memory.scalar(b.bias);
  return in;
}

}  // namespace

void check_infonce(const Backend& backend, const Case& c, uint64_t seed) {
  CAPTURE(backend.name);
  CAPTURE(c.describe());
  const Batch b = make_batch(c, seed);
  const auto o = losses::testing::infonce_oracle(
      b.image_local.values, b.text_local.values,
      c.one_process ? b.image_local.values : b.image_all.values,
      c.one_process ? b.text_local.values : b.text_all.values, c.offset, b.log_scale);

  Memory memory(backend);
  const LossOperands in = operands(memory, c, b);
  float* loss = memory.poisoned_floats(1);
  float* lse_a = memory.poisoned_floats(c.n);
  float* lse_b = memory.poisoned_floats(c.n);
  backend.infonce_forward({in, loss, lse_a, lse_b,
                           memory.raw(infonce_forward_workspace_bytes(c.n, c.m, c.one_process))},
                          nullptr);

  const float grad_output = 0.75f;  // an upstream gradient that is not 1
  Output d_image_local(memory, c.dtype, c.n, c.dim), d_text_local(memory, c.dtype, c.n, c.dim);
  Output d_image_all(memory, c.dtype, c.m, c.dim), d_text_all(memory, c.dtype, c.m, c.dim);
  float* d_log_scale = memory.poisoned_floats(1);
  InfoNCEBackwardParams back;
  back.in = in;
  back.lse_a = lse_a;
  back.lse_b = lse_b;
  back.grad_output = memory.scalar(grad_output);
  back.d_image_local = d_image_local.data();
  back.d_text_local = d_text_local.data();
  if (!c.one_process) {
    back.d_image_all = d_image_all.data();
    back.d_text_all = d_text_all.data();
  }
  back.d_log_scale = d_log_scale;
  back.workspace = memory.raw(infonce_backward_workspace_bytes(c.n, c.m, c.one_process));
  backend.infonce_backward(back, nullptr);

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
  expect_scalar("loss", memory.read_float(loss), o.loss, loss_bound);
  if (c.one_process) {
    // One process: the local gradients are the whole ones (oracle: local + all parts).
    expect_within("d image", c.dtype, d_image_local.values(backend),
                  scaled(losses::testing::add(o.d_image_local, o.d_image_all), go),
                  scaled(losses::testing::add(o.m_image_local, o.m_image_all), go), e, 2 * abs);
    expect_within("d text", c.dtype, d_text_local.values(backend),
                  scaled(losses::testing::add(o.d_text_local, o.d_text_all), go),
                  scaled(losses::testing::add(o.m_text_local, o.m_text_all), go), e, 2 * abs);
  } else {
    expect_within("d image_local", c.dtype, d_image_local.values(backend),
                  scaled(o.d_image_local, go), scaled(o.m_image_local, go), e, abs);
    expect_within("d text_local", c.dtype, d_text_local.values(backend), scaled(o.d_text_local, go),
                  scaled(o.m_text_local, go), e, abs);
    expect_within("d image_all", c.dtype, d_image_all.values(backend), scaled(o.d_image_all, go),
                  scaled(o.m_image_all, go), e, abs);
    expect_within("d text_all", c.dtype, d_text_all.values(backend), scaled(o.d_text_all, go),
                  scaled(o.m_text_all, go), e, abs);
  }
  const double scale_bound =
      go * (2.0 * (term_error(c, t) + 32.0 * kEps32) * o.m_logit_scale + 4.0 * kEps32 * t);
  expect_scalar("d log t", memory.read_float(d_log_scale), go * o.d_logit_scale, scale_bound);
}

void check_siglip(const Backend& backend, const Case& c, uint64_t seed) {
  CAPTURE(backend.name);
  CAPTURE(c.describe());
  const Batch b = make_batch(c, seed);
  const Matrix& y = c.one_process ? b.text_local.values : b.text_all.values;
  const auto o =
      losses::testing::siglip_oracle(b.image_local.values, y, c.offset, b.log_scale, b.bias);

  Memory memory(backend);
  const LossOperands in = operands(memory, c, b);
  float* loss = memory.poisoned_floats(1);
  backend.siglip_forward(
      {in, loss, memory.raw(siglip_forward_workspace_bytes(c.n, c.m, c.one_process))}, nullptr);

  const float grad_output = 1.5f;
  Output d_x(memory, c.dtype, c.n, c.dim), d_y(memory, c.dtype, c.m, c.dim);
  float* d_log_scale = memory.poisoned_floats(1);
  float* d_bias = memory.poisoned_floats(1);
  backend.siglip_backward(
      {in, memory.scalar(grad_output), d_x.data(), d_y.data(), d_log_scale, d_bias,
       memory.raw(siglip_backward_workspace_bytes(c.n, c.m, c.one_process))},
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
  expect_scalar("loss", memory.read_float(loss), o.loss, loss_bound);
  expect_within("d x", c.dtype, d_x.values(backend), scaled(o.d_x), scaled(o.m_x), e, abs);
  expect_within("d y", c.dtype, d_y.values(backend), scaled(o.d_y), scaled(o.m_y), e, abs);
  const double sum_error = 2.0 * (term_error(c, t) + 32.0 * kEps32);
  expect_scalar("d log t", memory.read_float(d_log_scale), go * o.d_logit_scale,
                go * (sum_error * o.m_logit_scale + 4.0 * kEps32 * t));
  expect_scalar("d b", memory.read_float(d_bias), go * o.d_logit_bias,
                go * (sum_error * o.m_logit_bias + 4.0 * kEps32));
}

void check_misaligned_start(const Backend& backend) {
  // Rows of a 16-byte multiple, but the matrices start 2 bytes off alignment: the element-wise
  // loads must give the very same sums (bitwise) as the cp.async path.
  const Case c = one_process(33, 64, DType::kBFloat16);
  CAPTURE(backend.name);
  const Batch b = make_batch(c, 31);
  Memory memory(backend);
  const LossOperands in = operands(memory, c, b);
  LossOperands shifted = in;
  auto shifted_copy = [&](const Rows& rows) {
    auto* base = static_cast<unsigned char*>(memory.raw(rows.bytes() + 2));
    backend.upload(base + 2, rows.data(), rows.bytes());
    return static_cast<const void*>(base + 2);
  };
  shifted.image_local = shifted_copy(b.image_local);
  shifted.text_local = shifted_copy(b.text_local);
  float* loss = memory.poisoned_floats(1);
  float* loss_shifted = memory.poisoned_floats(1);
  float* lse_a = memory.poisoned_floats(c.n);
  float* lse_b = memory.poisoned_floats(c.n);
  void* space = memory.raw(infonce_forward_workspace_bytes(c.n, c.m, true));
  backend.infonce_forward({in, loss, lse_a, lse_b, space}, nullptr);
  backend.infonce_forward({shifted, loss_shifted, lse_a, lse_b, space}, nullptr);
  CHECK(memory.read_float(loss_shifted) == memory.read_float(loss));
}

void check_unrequested_gradients(const Backend& backend) {
  // Only the temperature's gradient: no embedding gradient is written (none is passed), and the
  // sums come from the rows walks alone.
  const Case c = gathered(7, 64, 7, 64, DType::kBFloat16);
  CAPTURE(backend.name);
  const Batch b = make_batch(c, 41);
  Memory memory(backend);
  const LossOperands in = operands(memory, c, b);
  float* loss = memory.poisoned_floats(1);
  float* lse_a = memory.poisoned_floats(c.n);
  float* lse_b = memory.poisoned_floats(c.n);
  backend.infonce_forward(
      {in, loss, lse_a, lse_b, memory.raw(infonce_forward_workspace_bytes(c.n, c.m, false))},
      nullptr);
  InfoNCEBackwardParams back;
  back.in = in;
  back.lse_a = lse_a;
  back.lse_b = lse_b;
  back.grad_output = memory.scalar(1.0f);
  float* d_log_scale = memory.poisoned_floats(1);
  back.d_log_scale = d_log_scale;
  back.workspace = memory.raw(infonce_backward_workspace_bytes(c.n, c.m, false));
  backend.infonce_backward(back, nullptr);
  const auto o =
      losses::testing::infonce_oracle(b.image_local.values, b.text_local.values, b.image_all.values,
                                      b.text_all.values, c.offset, b.log_scale);
  const double t = std::exp(double{b.log_scale});
  expect_scalar("d log t alone", memory.read_float(d_log_scale), o.d_logit_scale,
                2.0 * (term_error(c, t) + 32.0 * kEps32) * o.m_logit_scale + 4.0 * kEps32 * t);
}

std::string Case::describe() const {
  return "n " + std::to_string(n) + ", m " + std::to_string(m) + ", D " + std::to_string(dim) +
         ", offset " + std::to_string(offset) + (one_process ? ", one process" : ", gathered") +
         ", " + dtype_name(dtype) + ", t " + std::to_string(std::exp(log_scale)) + ", b " +
         std::to_string(bias);
}

Case one_process(int64_t n, int64_t dim, DType dtype, double t) {
  Case c;
  c.n = c.m = n;
  c.dim = dim;
  c.dtype = dtype;
  c.log_scale = std::log(t);
  return c;
}

Case gathered(int64_t n, int64_t m, int64_t offset, int64_t dim, DType dtype, double t) {
  Case c = one_process(n, dim, dtype, t);
  c.m = m;
  c.offset = offset;
  c.one_process = false;
  return c;
}

namespace {
constexpr DType kBf16 = DType::kBFloat16;
constexpr DType kFp16 = DType::kFloat16;
constexpr DType kFp32 = DType::kFloat32;
}  // namespace

// Each size appears with every dtype somewhere, and every kernel variant runs: p resident with
// D up to 64, 128, 256, 512 (fp32: 256), and streamed in chunks beyond (D 300 fp32, 520, 1152).
// D = 1152 (SigLIP so400m) and the 300-row cases are few: emulation runs every lane of every mma.
std::vector<Case> infonce_one_process_cases() {
  return {one_process(1, 8, kBf16),           one_process(7, 64, kFp16, 1.0),
          one_process(64, 8, kFp32, 100.0),   one_process(129, 520, kBf16),
          one_process(300, 64, kFp16, 100.0), one_process(7, 1152, kFp32),
          one_process(129, 64, kFp32),        one_process(64, 1152, kBf16, 100.0),
          one_process(65, 300, kBf16),        one_process(33, 256, kFp32, 100.0),
          one_process(9, 512, kFp16)};
}

std::vector<Case> infonce_gathered_cases() {
  return {gathered(1, 7, 6, 8, kBf16),        gathered(7, 129, 64, 64, kFp32, 1.0),
          gathered(64, 300, 129, 520, kFp16), gathered(129, 300, 171, 8, kBf16, 100.0),
          gathered(7, 300, 0, 1152, kBf16),   gathered(64, 129, 65, 64, kFp32, 100.0),
          gathered(7, 129, 100, 200, kFp16),  gathered(5, 70, 60, 300, kFp32, 10.0)};
}

std::vector<Case> siglip_cases() {
  std::vector<Case> cases = {one_process(1, 8, kFp32, 10.0),
                             one_process(7, 520, kBf16, 100.0),
                             one_process(129, 64, kFp16, 1.0),
                             one_process(300, 8, kBf16, 10.0),
                             gathered(7, 300, 293, 64, kFp32, 10.0),
                             gathered(64, 129, 0, 1152, kBf16, 10.0),
                             gathered(129, 300, 64, 520, kFp16, 100.0),
                             one_process(65, 512, kBf16, 10.0),
                             gathered(9, 64, 55, 256, kFp32, 10.0)};
  for (size_t i = 0; i < cases.size(); ++i) {
    cases[i].bias = i % 2 == 0 ? -10.0 : 10.0;
  }
  return cases;
}

std::vector<Case> odd_row_cases() {
  // bf16 D = 7: 14-byte rows; fp16 D = 100: 200 bytes; fp32 D = 13: 52 bytes.
  return {one_process(9, 7, kBf16), gathered(5, 70, 33, 100, kFp16),
          one_process(65, 13, kFp32, 100.0)};
}

}  // namespace duet::kernels::testing
