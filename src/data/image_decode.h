#pragma once
// Image decoding from bytes in memory: JPEG through libjpeg-turbo's TurboJPEG API, PNG through
// libpng's simplified API, WebP (lossy and lossless) through libwebp. Every image comes out as
// 8-bit RGB (grey, grey+alpha, palette, 16-bit and alpha images are converted; alpha is composited
// on black). Metadata (EXIF orientation, ICC profiles, gamma) is ignored, as in PIL's default
// `convert("RGB")`. Corrupt, truncated or unsupported data throws ImageDecodeError (a duet::Error)
// with a reason; the loader turns that into a skipped sample. Thread-safe: each thread keeps its
// own decoder.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"

namespace duet::data {

enum class ImageFormat { kUnknown, kJpeg, kPng, kWebp };

// Decoded pixels: height rows of width RGB triplets, no padding.
struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;  // [height, width, 3]
};

struct ImageHeader {
  ImageFormat format = ImageFormat::kUnknown;
  int width = 0;
  int height = 0;
};

class ImageDecodeError : public Error {
 public:
  explicit ImageDecodeError(const std::string& message) : Error(ErrorKind::kRuntime, message) {}
};

// The format from the leading magic bytes.
ImageFormat sniff_image_format(const uint8_t* data, size_t size);

// Format and full-resolution size without decoding the pixels.
ImageHeader read_image_header(const uint8_t* data, size_t size);

// Decodes to RGB. A JPEG may be decoded at a reduced scale (M/8, libjpeg-turbo's DCT scaling)
// when that still gives at least min_width x min_height pixels; 0 asks for the full size. PNGs
// and WebPs always come out at full size. Throws ImageDecodeError.
Image decode_image(const uint8_t* data, size_t size, int min_width = 0, int min_height = 0);

}  // namespace duet::data
