// Crop boxes (torchvision's rules) and the bicubic resampler against a float64 2-D reference.
#include <catch2/catch.hpp>

#include <cmath>

#include "data/transforms.h"
#include "data_fixtures.h"

using namespace duet::data;
using namespace duet::data::testing;

namespace {

Image make_image(int w, int h, int seed) {
  Image img;
  img.width = w;
  img.height = h;
  img.pixels = pattern_rgb(w, h, seed);
  return img;
}

double cubic(double x) {
  const double a = -0.5;
  x = std::abs(x);
  if (x < 1) return (a + 2) * x * x * x - (a + 3) * x * x + 1;
  if (x < 2) return a * x * x * x - 5 * a * x * x + 8 * a * x - 4 * a;
  return 0;
}

// Weights of output index o over all inputs [in_size] (dense, float64).
std::vector<double> dense_weights(int in_size, double in0, double in1, int out_size, int o) {
  const double scale = (in1 - in0) / out_size;
  const double fs = std::max(scale, 1.0);
  const double support = 2.0 * fs;
  const double center = in0 + (o + 0.5) * scale;
  std::vector<double> w(static_cast<size_t>(in_size), 0.0);
  double total = 0;
  const int lo = std::max(static_cast<int>(center - support + 0.5), 0);
  const int hi = std::min(static_cast<int>(center + support + 0.5), in_size);
  for (int i = lo; i < hi; ++i) {
    w[static_cast<size_t>(i)] = cubic((i - center + 0.5) / fs);
    total += w[static_cast<size_t>(i)];
  }
  for (auto& v : w) v /= total;
  return w;
}

// float64 reference of resample_normalize: a full 2-D weighted sum, then clamp and normalise.
std::vector<double> reference(const Image& img, const CropBox& box, int size, bool flip,
                              const Normalization& n) {
  std::vector<double> out(static_cast<size_t>(3 * size * size));
  for (int oy = 0; oy < size; ++oy) {
    const auto wy = dense_weights(img.height, box.y0, box.y1, size, oy);
    for (int ox = 0; ox < size; ++ox) {
      const auto wx = dense_weights(img.width, box.x0, box.x1, size, ox);
      for (int c = 0; c < 3; ++c) {
        double s = 0;
        for (int y = 0; y < img.height; ++y) {
          if (wy[static_cast<size_t>(y)] == 0) continue;
          for (int x = 0; x < img.width; ++x) {
            s += wy[static_cast<size_t>(y)] * wx[static_cast<size_t>(x)] *
                 img.pixels[(static_cast<size_t>(y) * img.width + x) * 3 + c];
          }
        }
        s = std::min(std::max(s, 0.0), 255.0);
        const int x_out = flip ? size - 1 - ox : ox;
        out[(static_cast<size_t>(c) * size + oy) * size + x_out] =
            (s / 255.0 - n.mean[c]) / n.std[c];
      }
    }
  }
  return out;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<double>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

}  // namespace

TEST_CASE("transforms: resampling matches the float64 reference on awkward sizes") {
  const Normalization norm;
  struct Case {
    int w, h, size;
    CropBox box;
    bool flip;
  };
  const Case cases[] = {
      {37, 23, 16, {0, 0, 37, 23}, false},           // downscale, both axes
      {37, 23, 16, {3, 2, 30, 21}, true},            // crop + flip
      {13, 7, 29, {0, 0, 13, 7}, false},             // upscale
      {1, 1, 5, {0, 0, 1, 1}, false},                // single pixel
      {50, 41, 17, {4.25, 1.5, 47.75, 39.5}, true},  // fractional box
      {64, 64, 64, {0, 0, 64, 64}, false},           // identity
  };
  for (const Case& c : cases) {
    INFO(c.w << "x" << c.h << " -> " << c.size);
    const Image img = make_image(c.w, c.h, c.w);
    std::vector<float> out(static_cast<size_t>(3 * c.size * c.size));
    resample_normalize(img, c.box, c.size, c.flip, norm, out.data());
    // Float accumulation against float64: a few ulps of 255 / std ~ 1e-4.
    CHECK(max_abs_diff(out, reference(img, c.box, c.size, c.flip, norm)) < 2e-4);
  }
}

TEST_CASE("transforms: identity resample returns the normalised pixels") {
  const Image img = make_image(9, 6, 1);
  Normalization norm;
  norm.mean = {0.5f, 0.25f, 0.0f};
  norm.std = {0.5f, 2.0f, 1.0f};
  std::vector<float> out(3 * 9 * 9);
  // 9x6 is not square: use a 6x6 crop at x = 2 to stay at scale 1.
  resample_normalize(img, {2, 0, 8, 6}, 6, false, norm, out.data());
  for (int c = 0; c < 3; ++c) {
    for (int y = 0; y < 6; ++y) {
      for (int x = 0; x < 6; ++x) {
        const double v = img.pixels[(static_cast<size_t>(y) * 9 + x + 2) * 3 + c] / 255.0;
        CHECK(out[(static_cast<size_t>(c) * 6 + y) * 6 + x] ==
              Approx((v - norm.mean[c]) / norm.std[c]).margin(1e-5));
      }
    }
  }
}

TEST_CASE("transforms: centre crop box follows torchvision's Resize + CenterCrop") {
  const CropBox land = center_crop_box(300, 200, 224);  // resized to 336x224, crop left 56
  CHECK(land.x0 == Approx(50.0));
  CHECK(land.x1 == Approx(250.0));
  CHECK(land.y0 == 0.0);
  CHECK(land.y1 == 200.0);
  const CropBox port = center_crop_box(100, 150, 64);  // resized to 64x96, crop top 16
  CHECK(port.x0 == 0.0);
  CHECK(port.x1 == 100.0);
  CHECK(port.y0 == Approx(25.0));
  CHECK(port.y1 == Approx(125.0));
  const CropBox square = center_crop_box(28, 28, 224);
  CHECK(square.x1 == 28.0);
  CHECK(square.y1 == 28.0);
}

TEST_CASE("transforms: random resized crop boxes fit and follow scale and ratio") {
  Rng rng(7);
  for (int i = 0; i < 2000; ++i) {
    const int w = 50 + i % 300;
    const int h = 40 + (i * 7) % 250;
    const CropBox b = random_resized_crop_box(w, h, 0.3, 1.0, 3.0 / 4.0, 4.0 / 3.0, rng);
    REQUIRE(b.x0 >= 0);
    REQUIRE(b.y0 >= 0);
    REQUIRE(b.x1 <= w);
    REQUIRE(b.y1 <= h);
    REQUIRE(b.width() > 0);
    REQUIRE(b.height() > 0);
    CHECK(b.x0 == std::floor(b.x0));
    const double area = b.width() * b.height() / (static_cast<double>(w) * h);
    CHECK(area <= 1.0);
    // Rounding to whole pixels moves the area and ratio slightly.
    const double ratio = b.width() / b.height();
    // The fallback is the ratio-clamped centre crop; any other box came from a successful draw.
    const double in_ratio = static_cast<double>(w) / h;
    const int fw = in_ratio > 4.0 / 3.0 ? static_cast<int>(std::nearbyint(h * 4.0 / 3.0)) : w;
    const int fh = in_ratio < 0.75 ? static_cast<int>(std::nearbyint(w / 0.75)) : h;
    const bool fallback =
        b.width() == fw && b.height() == fh && b.x0 == (w - fw) / 2 && b.y0 == (h - fh) / 2;
    if (!fallback) {
      CHECK(area >= 0.3 - 0.05);
      CHECK(ratio >= 0.75 * 0.9);
      CHECK(ratio <= 4.0 / 3.0 * 1.1);
    }
  }
}

TEST_CASE("transforms: random resized crop falls back to a ratio-clamped centre crop") {
  Rng rng(1);
  // Any box of >= 90% of a 1000x10 image has ratio ~100, outside [3/4, 4/3].
  const CropBox b = random_resized_crop_box(1000, 10, 0.9, 1.0, 3.0 / 4.0, 4.0 / 3.0, rng);
  CHECK(b.height() == 10);
  CHECK(b.width() == 13);  // round(10 * 4/3)
  CHECK(b.x0 == (1000 - 13) / 2);
  Rng a(5);
  Rng c(5);
  const CropBox b1 = random_resized_crop_box(640, 480, 0.5, 1.0, 0.75, 4.0 / 3.0, a);
  const CropBox b2 = random_resized_crop_box(640, 480, 0.5, 1.0, 0.75, 4.0 / 3.0, c);
  CHECK(b1.x0 == b2.x0);
  CHECK(b1.y1 == b2.y1);
}

TEST_CASE("transforms: flipping mirrors the output columns") {
  const Image img = make_image(40, 30, 2);
  const Normalization norm;
  std::vector<float> a(3 * 12 * 12);
  std::vector<float> b(3 * 12 * 12);
  resample_normalize(img, {5, 3, 35, 28}, 12, false, norm, a.data());
  resample_normalize(img, {5, 3, 35, 28}, 12, true, norm, b.data());
  for (int c = 0; c < 3; ++c) {
    for (int y = 0; y < 12; ++y) {
      for (int x = 0; x < 12; ++x) {
        CHECK(a[(static_cast<size_t>(c) * 12 + y) * 12 + x] ==
              b[(static_cast<size_t>(c) * 12 + y) * 12 + 11 - x]);
      }
    }
  }
}
