#pragma once
// CLIP preprocessing on decoded RGB images, written straight into the model's float layout.
//   eval:  Resize(shorter side -> S, bicubic) + CenterCrop(S)          (OpenCLIP's eval transform)
//   train: RandomResizedCrop(S, scale, ratio=(3/4, 4/3), bicubic) [+ horizontal flip]
//   both:  ToTensor + Normalize(mean, std) -> [3, S, S] float32
// A crop followed by a resize is one resampling of a box of the source (PIL's resize(box=...)),
// so both transforms reduce to a CropBox and resample_normalize. Resampling uses PIL's separable
// antialiased bicubic filter (a = -0.5, support widened by the reduction factor), so results
// match PIL + torchvision up to PIL's intermediate rounding to uint8. Torch-free.
#include <array>

#include "data/image_decode.h"
#include "data/rng.h"

namespace duet::data {

// A box in source pixel coordinates (edges, not centres): [x0, x1) x [y0, y1).
struct CropBox {
  double x0 = 0;
  double y0 = 0;
  double x1 = 0;
  double y1 = 0;
  double width() const { return x1 - x0; }
  double height() const { return y1 - y0; }
};

struct Normalization {
  std::array<float, 3> mean{0.48145466f, 0.4578275f, 0.40821073f};  // CLIP's
  std::array<float, 3> std{0.26862954f, 0.26130258f, 0.27577711f};
};

// torchvision's RandomResizedCrop.get_params: up to 10 draws of (area fraction in
// [scale_min, scale_max], log-uniform aspect ratio in [ratio_min, ratio_max]) until the box
// fits, else the central crop with the ratio clamped. Integer box as torchvision's.
CropBox random_resized_crop_box(int width, int height, double scale_min, double scale_max,
                                double ratio_min, double ratio_max, Rng& rng);

// The source box that Resize(size) (shorter side, torchvision's rounding) + CenterCrop(size)
// keeps.
CropBox center_crop_box(int width, int height, int size);

// The same box in the coordinates of the image decoded at another resolution.
CropBox rescale_box(const CropBox& box, int from_width, int from_height, int to_width,
                    int to_height);

// Resamples `box` of `image` to size x size (bicubic, antialiased), mirrors it left-right when
// `hflip`, clamps to [0, 255], normalises ((v / 255 - mean) / std) and writes [3, size, size]
// float32 to `out`.
void resample_normalize(const Image& image, const CropBox& box, int size, bool hflip,
                        const Normalization& norm, float* out);

}  // namespace duet::data
