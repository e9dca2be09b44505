// Crop boxes and the separable bicubic resampler (see transforms.h). The resampler runs the
// vertical pass first (uint8 RGB rows -> float rows, over the box's columns only; the inner loop
// is contiguous and vectorises), then the horizontal pass on the `size` resulting rows, which
// clamps, normalises and writes the [3, S, S] planes.
#include "data/transforms.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/error.h"

namespace duet::data {
namespace {

// PIL's bicubic kernel (a = -0.5), support 2.
double bicubic(double x) {
  constexpr double a = -0.5;
  x = std::fabs(x);
  if (x < 1.0) {
    return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  }
  if (x < 2.0) {
    return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  }
  return 0.0;
}

// Per output position: the first input index and the normalised weights (PIL's
// precompute_coeffs, same rounding).
struct Coefficients {
  int taps = 0;                // stride of `weights`
  std::vector<int> first;      // [out]
  std::vector<int> count;      // [out]
  std::vector<float> weights;  // [out, taps]
};

Coefficients coefficients(int in_size, double in0, double in1, int out_size) {
  const double scale = (in1 - in0) / out_size;
  const double filter_scale = std::max(scale, 1.0);
  const double support = 2.0 * filter_scale;
  Coefficients c;
  c.taps = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.first.resize(out_size);
  c.count.resize(out_size);
  c.weights.assign(static_cast<size_t>(out_size) * c.taps, 0.0f);
  std::vector<double> w(c.taps);
  for (int o = 0; o < out_size; ++o) {
    const double center = in0 + (o + 0.5) * scale;
    const int lo = std::max(static_cast<int>(center - support + 0.5), 0);
    const int hi = std::min(static_cast<int>(center + support + 0.5), in_size);
    const int n = std::max(std::min(hi - lo, c.taps), 0);
    double total = 0.0;
    for (int k = 0; k < n; ++k) {
      w[k] = bicubic((k + lo - center + 0.5) / filter_scale);
      total += w[k];
    }
    for (int k = 0; k < n; ++k) {
      c.weights[static_cast<size_t>(o) * c.taps + k] =
          static_cast<float>(total != 0.0 ? w[k] / total : 0.0);
    }
    c.first[o] = lo;
    c.count[o] = n;
  }
  return c;
}

// out[i] = sum_k w[k] * src[k * stride + i] for i < n: one output row of the vertical pass.
// Compiled for AVX2+FMA as well where the compiler can dispatch at run time.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
__attribute__((target_clones("default", "avx2,fma")))
#endif
void vertical_taps(const uint8_t* __restrict src, size_t stride, const float* __restrict w,
                   int taps, int n, float* __restrict out) {
  for (int i = 0; i < n; ++i) {
    out[i] = 0.f;
  }
  for (int k = 0; k < taps; ++k) {
    const float wk = w[k];
    const uint8_t* __restrict row = src + static_cast<size_t>(k) * stride;
    for (int i = 0; i < n; ++i) {
      out[i] += wk * static_cast<float>(row[i]);
    }
  }
}

}  // namespace

CropBox random_resized_crop_box(int width, int height, double scale_min, double scale_max,
                                double ratio_min, double ratio_max, Rng& rng) {
  const double area = static_cast<double>(width) * height;
  const double log_lo = std::log(ratio_min);
  const double log_hi = std::log(ratio_max);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area = area * rng.uniform(scale_min, scale_max);
    const double aspect = std::exp(rng.uniform(log_lo, log_hi));
    // Python's round() is round-half-even, as nearbyint in the default rounding mode.
    const int w = static_cast<int>(std::nearbyint(std::sqrt(target_area * aspect)));
    const int h = static_cast<int>(std::nearbyint(std::sqrt(target_area / aspect)));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const int top = static_cast<int>(rng.between(0, height - h));
      const int left = static_cast<int>(rng.between(0, width - w));
      return {static_cast<double>(left), static_cast<double>(top), static_cast<double>(left + w),
              static_cast<double>(top + h)};
    }
  }
  const double in_ratio = static_cast<double>(width) / height;
  int w = width;
  int h = height;
  if (in_ratio < ratio_min) {
    h = static_cast<int>(std::nearbyint(w / ratio_min));
  } else if (in_ratio > ratio_max) {
    w = static_cast<int>(std::nearbyint(h * ratio_max));
  }
  const int top = (height - h) / 2;
  const int left = (width - w) / 2;
  return {static_cast<double>(left), static_cast<double>(top), static_cast<double>(left + w),
          static_cast<double>(top + h)};
}

CropBox center_crop_box(int width, int height, int size) {
  const bool portrait = width <= height;
  const int short_side = portrait ? width : height;
  const int long_side = portrait ? height : width;
  // torchvision: new_long = int(size * long / short); crop offset = int(round((new - size) / 2)).
  const int new_long = static_cast<int>(static_cast<double>(size) * long_side / short_side);
  const int offset = static_cast<int>(std::nearbyint((new_long - size) / 2.0));
  const double long_scale = static_cast<double>(long_side) / new_long;
  const double lo = offset * long_scale;
  const double hi = (offset + size) * long_scale;
  if (portrait) {
    return {0.0, lo, static_cast<double>(width), hi};
  }
  return {lo, 0.0, hi, static_cast<double>(height)};
}

CropBox rescale_box(const CropBox& box, int from_width, int from_height, int to_width,
                    int to_height) {
  const double sx = static_cast<double>(to_width) / from_width;
  const double sy = static_cast<double>(to_height) / from_height;
  return {box.x0 * sx, box.y0 * sy, box.x1 * sx, box.y1 * sy};
}

void resample_normalize(const Image& image, const CropBox& box, int size, bool hflip,
                        const Normalization& norm, float* out) {
  DUET_CHECK(image.width > 0 && image.height > 0 && size > 0, "resample: empty image or size");
  const Coefficients cx = coefficients(image.width, box.x0, box.x1, size);
  const Coefficients cy = coefficients(image.height, box.y0, box.y1, size);
  // Source columns the horizontal pass reads (the windows move right monotonically).
  const int col_lo = cx.first[0];
  int col_hi = col_lo;
  for (int o = 0; o < size; ++o) {
    col_hi = std::max(col_hi, cx.first[o] + cx.count[o]);
  }
  const int span = (col_hi - col_lo) * 3;  // floats per intermediate row, RGB interleaved

  // Vertical pass first: [size, span] floats. Its inner loop runs over contiguous pixels and
  // vectorises, and it leaves the (scalar) horizontal pass only `size` rows instead of every
  // source row of the box.
  std::vector<float> tmp(static_cast<size_t>(size) * span);
  const size_t stride = static_cast<size_t>(image.width) * 3;
  const uint8_t* base = image.pixels.data() + static_cast<size_t>(col_lo) * 3;
  for (int o = 0; o < size; ++o) {
    vertical_taps(base + static_cast<size_t>(cy.first[o]) * stride, stride,
                  cy.weights.data() + static_cast<size_t>(o) * cy.taps, cy.count[o], span,
                  tmp.data() + static_cast<size_t>(o) * span);
  }

  // Horizontal pass + clamp + normalise into [3, size, size]. With hflip the output columns
  // are written mirrored, which is the same as flipping the final image.
  float gain[3];
  float offset[3];
  for (int c = 0; c < 3; ++c) {
    gain[c] = 1.0f / (255.0f * norm.std[c]);
    offset[c] = -norm.mean[c] / norm.std[c];
  }
  const size_t plane = static_cast<size_t>(size) * size;
  for (int y = 0; y < size; ++y) {
    const float* row = tmp.data() + static_cast<size_t>(y) * span;
    float* d0 = out + static_cast<size_t>(y) * size;
    float* d1 = d0 + plane;
    float* d2 = d1 + plane;
    for (int o = 0; o < size; ++o) {
      const float* w = cx.weights.data() + static_cast<size_t>(o) * cx.taps;
      const float* p = row + static_cast<size_t>(cx.first[o] - col_lo) * 3;
      float s0 = 0.f;
      float s1 = 0.f;
      float s2 = 0.f;
      for (int k = 0; k < cx.count[o]; ++k) {
        s0 += w[k] * p[3 * k];
        s1 += w[k] * p[3 * k + 1];
        s2 += w[k] * p[3 * k + 2];
      }
      const int x = hflip ? size - 1 - o : o;
      d0[x] = std::min(std::max(s0, 0.f), 255.f) * gain[0] + offset[0];
      d1[x] = std::min(std::max(s1, 0.f), 255.f) * gain[1] + offset[1];
      d2[x] = std::min(std::max(s2, 0.f), 255.f) * gain[2] + offset[2];
    }
  }
}

}  // namespace duet::data
