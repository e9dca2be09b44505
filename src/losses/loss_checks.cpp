#include "losses/loss_checks.h"

#include "common/dtype_names.h"
#include "common/error.h"

namespace duet::losses {
namespace {

bool supported_dtype(torch::ScalarType type) {
  return type == torch::kFloat32 || type == torch::kFloat64 || type == torch::kBFloat16 ||
         type == torch::kFloat16;
}

// A defined 2-D floating matrix.
void check_matrix(const char* op, const char* name, const torch::Tensor& t, const char* shape) {
  DUET_CHECK(t.defined(), "{}: {} is undefined (expected a {} matrix)", op, name, shape);
  DUET_CHECK(t.dim() == 2, "{}: {} must be a 2-D {} matrix, got {}", op, name, shape, describe(t));
  DUET_CHECK(supported_dtype(t.scalar_type()),
             "{}: {} must be float32, float64, bfloat16 or float16, got {}", op, name, describe(t));
}

// `t` shares `like`'s dtype and device.
void check_same_kind(const char* op, const char* name, const torch::Tensor& t,
                     const char* like_name, const torch::Tensor& like) {
  DUET_CHECK(t.scalar_type() == like.scalar_type() && t.device() == like.device(),
             "{}: {} must have {}'s dtype and device ({} {}), got {}", op, name, like_name,
             dtype_name(like.scalar_type()), like.device().str(), describe(t));
}

// A defined 0-dim floating tensor on `device`.
void check_scalar(const char* op, const char* name, const torch::Tensor& t, const char* meaning,
                  const torch::Device& device) {
  DUET_CHECK(t.defined(), "{}: {} is undefined (expected a 0-dim tensor: {})", op, name, meaning);
  DUET_CHECK(t.dim() == 0, "{}: {} must be a 0-dim tensor ({}), got {}", op, name, meaning,
             describe(t));
  DUET_CHECK(t.is_floating_point(), "{}: {} must be floating point, got {}", op, name, describe(t));
  DUET_CHECK(t.device() == device, "{}: {} must be on {} like the embeddings, got {}", op, name,
             device.str(), describe(t));
}

// 1 <= n, 0 <= offset, offset + n <= M.
void check_rows(const char* op, const char* local_name, const torch::Tensor& local,
                const char* all_name, const torch::Tensor& all, int64_t offset) {
  const int64_t n = local.size(0);
  const int64_t m = all.size(0);
  DUET_CHECK(n >= 1, "{}: {} has no rows: {}", op, local_name, describe(local));
  DUET_CHECK(n <= m, "{}: {} has more rows (n = {}) than the gathered {} (M = {})", op, local_name,
             n, all_name, m);
  DUET_CHECK(offset >= 0 && offset + n <= m,
             "{}: offset {} puts the n = {} local rows outside the M = {} rows of {} (need 0 <= "
             "offset <= M - n = {}); offset is this rank's first row in the global batch",
             op, offset, n, m, all_name, m - n);
}

}  // namespace

void check_infonce_inputs(const char* op, const torch::Tensor& image_local,
                          const torch::Tensor& text_local, const torch::Tensor& image_all,
                          const torch::Tensor& text_all, int64_t offset,
                          const torch::Tensor& logit_scale) {
  check_matrix(op, "image_local", image_local, "[n, D]");
  check_matrix(op, "text_local", text_local, "[n, D]");
  check_matrix(op, "image_all", image_all, "[M, D]");
  check_matrix(op, "text_all", text_all, "[M, D]");
  check_same_kind(op, "text_local", text_local, "image_local", image_local);
  check_same_kind(op, "image_all", image_all, "image_local", image_local);
  check_same_kind(op, "text_all", text_all, "image_local", image_local);
  const int64_t n = image_local.size(0);
  const int64_t d = image_local.size(1);
  DUET_CHECK(text_local.sizes() == image_local.sizes(),
             "{}: text_local must be [n, D] = [{}, {}] like image_local, got {}", op, n, d,
             describe(text_local));
  DUET_CHECK(image_all.size(1) == d,
             "{}: image_all must be [M, D] with D = {} (image_local's), got {}", op, d,
             describe(image_all));
  DUET_CHECK(text_all.sizes() == image_all.sizes(),
             "{}: text_all must be [M, D] = [{}, {}] like image_all, got {}", op, image_all.size(0),
             d, describe(text_all));
  check_rows(op, "image_local", image_local, "image_all", image_all, offset);
  check_scalar(op, "logit_scale", logit_scale, "the log temperature, t = exp(logit_scale)",
               image_local.device());
}

void check_siglip_inputs(const char* op, const torch::Tensor& x_local, const torch::Tensor& y_all,
                         int64_t offset, const torch::Tensor& logit_scale,
                         const torch::Tensor& logit_bias) {
  check_matrix(op, "x_local", x_local, "[n, D]");
  check_matrix(op, "y_all", y_all, "[M, D]");
  check_same_kind(op, "y_all", y_all, "x_local", x_local);
  DUET_CHECK(y_all.size(1) == x_local.size(1),
             "{}: y_all must be [M, D] with D = {} (x_local's), got {}", op, x_local.size(1),
             describe(y_all));
  check_rows(op, "x_local", x_local, "y_all", y_all, offset);
  check_scalar(op, "logit_scale", logit_scale, "the log temperature, t = exp(logit_scale)",
               x_local.device());
  check_scalar(op, "logit_bias", logit_bias, "the learnable logit bias b", x_local.device());
}

void check_tile_size(const char* op, int64_t tile_size) {
  DUET_CHECK(tile_size >= 1, "{}: tile_size must be >= 1 (loss.tile_size), got {}", op, tile_size);
}

torch::ScalarType compute_dtype(torch::ScalarType input) {
  return input == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
}

}  // namespace duet::losses
