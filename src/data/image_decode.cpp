// JPEG, PNG and WebP decoding (see image_decode.h). TurboJPEG handles are created once per
// thread. WebP goes through libwebp's simple API; alpha is composited on black like PNG's. A
// truncated JPEG is an error (libjpeg-turbo would pad it with grey and only warn), while
// other libjpeg warnings (e.g. extraneous bytes before a marker) are tolerated as PIL does.
#include "data/image_decode.h"

#include <png.h>
#include <turbojpeg.h>
#include <webp/decode.h>

#include <cstring>
#include <memory>

namespace duet::data {
namespace {

// Refuse absurd dimensions from the header, before allocating: a crafted header can claim
// 60000 x 60000 (10.8 GB of RGB) in a few bytes. The pixel limit is PIL's decompression-bomb
// limit (2 x Image.MAX_IMAGE_PIXELS), so duet rejects what PIL rejects by default.
constexpr int64_t kMaxSide = 1 << 16;
constexpr int64_t kMaxPixels = 178956970;

struct TjDeleter {
  void operator()(void* handle) const { tjDestroy(handle); }
};

std::unique_ptr<void, TjDeleter>& thread_decompressor() {
  thread_local std::unique_ptr<void, TjDeleter> handle;
  return handle;
}

tjhandle decompressor() {
  auto& handle = thread_decompressor();
  if (!handle) {
    handle.reset(tjInitDecompress());
    if (!handle) {
      throw ImageDecodeError("cannot create a TurboJPEG decompressor");
    }
  }
  return handle.get();
}

// After a failed call libjpeg-turbo 2.1 can leave the handle mid-stream (the next header read
// then reports a tables-only stream, 0x0): start the next image on a fresh handle.
[[noreturn]] void fail_jpeg(const std::string& message) {
  thread_decompressor().reset();
  throw ImageDecodeError(message);
}

uint32_t read_be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

void check_size(int64_t width, int64_t height) {
  if (width <= 0 || height <= 0 || width > kMaxSide || height > kMaxSide) {
    throw ImageDecodeError("bad image size " + std::to_string(width) + "x" +
                           std::to_string(height));
  }
  if (width * height > kMaxPixels) {
    throw ImageDecodeError("image too large: " + std::to_string(width) + "x" +
                           std::to_string(height) + " = " + std::to_string(width * height) +
                           " pixels, more than the limit of " + std::to_string(kMaxPixels) +
                           " (a decompression bomb?)");
  }
}

ImageHeader jpeg_header(const uint8_t* data, size_t size) {
  ImageHeader header;
  header.format = ImageFormat::kJpeg;
  int subsampling = 0;
  int colorspace = 0;
  tjhandle tj = decompressor();
  if (tjDecompressHeader3(tj, data, static_cast<unsigned long>(size), &header.width, &header.height,
                          &subsampling, &colorspace) != 0) {
    fail_jpeg(std::string("corrupt JPEG header: ") + tjGetErrorStr2(tj));
  }
  if (header.width <= 0 || header.height <= 0) {
    fail_jpeg("JPEG without an image (tables only)");
  }
  check_size(header.width, header.height);
  return header;
}

Image decode_jpeg(const uint8_t* data, size_t size, int min_width, int min_height) {
  const ImageHeader header = jpeg_header(data, size);
  // The smallest supported scale (largest reduction) that keeps both minimums.
  int count = 0;
  const tjscalingfactor* factors = tjGetScalingFactors(&count);
  tjscalingfactor best{1, 1};
  if (min_width > 0 && min_height > 0) {
    for (int i = 0; i < count; ++i) {
      const tjscalingfactor f = factors[i];
      if (f.num > f.denom) {
        continue;  // never upscale in the decoder
      }
      const int w = TJSCALED(header.width, f);
      const int h = TJSCALED(header.height, f);
      if (w >= min_width && h >= min_height &&
          static_cast<long>(f.num) * best.denom < static_cast<long>(best.num) * f.denom) {
        best = f;
      }
    }
  }
  Image image;
  image.width = TJSCALED(header.width, best);
  image.height = TJSCALED(header.height, best);
  image.pixels.resize(static_cast<size_t>(image.width) * image.height * 3);
  tjhandle tj = decompressor();
  if (tjDecompress2(tj, data, static_cast<unsigned long>(size), image.pixels.data(), image.width, 0,
                    image.height, TJPF_RGB, 0) != 0) {
    const std::string message = tjGetErrorStr2(tj);
    if (tjGetErrorCode(tj) == TJERR_FATAL || message.find("Premature end") != std::string::npos) {
      fail_jpeg("corrupt or truncated JPEG: " + message);
    }
  }
  return image;
}

ImageHeader png_header(const uint8_t* data, size_t size) {
  // Signature (8) + IHDR length (4) + "IHDR" (4) + width (4) + height (4).
  if (size < 24 || std::memcmp(data + 12, "IHDR", 4) != 0) {
    throw ImageDecodeError("corrupt PNG header");
  }
  ImageHeader header;
  header.format = ImageFormat::kPng;
  const uint32_t width = read_be32(data + 16);
  const uint32_t height = read_be32(data + 20);
  check_size(width, height);
  header.width = static_cast<int>(width);
  header.height = static_cast<int>(height);
  return header;
}

Image decode_png(const uint8_t* data, size_t size) {
  png_header(data, size);  // size limits first, with our reason, before libpng reads further
  png_image png;
  std::memset(&png, 0, sizeof(png));
  png.version = PNG_IMAGE_VERSION;
  if (png_image_begin_read_from_memory(&png, data, size) == 0) {
    const std::string message = png.message;
    png_image_free(&png);
    throw ImageDecodeError("corrupt PNG: " + message);
  }
  png.format = PNG_FORMAT_RGB;
  try {
    check_size(png.width, png.height);
  } catch (...) {
    png_image_free(&png);
    throw;
  }
  Image image;
  image.width = static_cast<int>(png.width);
  image.height = static_cast<int>(png.height);
  image.pixels.resize(PNG_IMAGE_SIZE(png));
  if (png_image_finish_read(&png, nullptr, image.pixels.data(), 0, nullptr) == 0) {
    const std::string message = png.message;
    png_image_free(&png);
    throw ImageDecodeError("corrupt or truncated PNG: " + message);
  }
  return image;
}

ImageHeader webp_header(const uint8_t* data, size_t size) {
  WebPBitstreamFeatures features;
  if (WebPGetFeatures(data, size, &features) != VP8_STATUS_OK) {
    throw ImageDecodeError("corrupt WebP header");
  }
  check_size(features.width, features.height);
  ImageHeader header;
  header.format = ImageFormat::kWebp;
  header.width = features.width;
  header.height = features.height;
  return header;
}

Image decode_webp(const uint8_t* data, size_t size) {
  const ImageHeader header = webp_header(data, size);
  std::vector<uint8_t> rgba(static_cast<size_t>(header.width) * header.height * 4);
  if (WebPDecodeRGBAInto(data, size, rgba.data(), rgba.size(), header.width * 4) == nullptr) {
    throw ImageDecodeError("corrupt or truncated WebP");
  }
  Image image;
  image.width = header.width;
  image.height = header.height;
  image.pixels.resize(static_cast<size_t>(header.width) * header.height * 3);
  for (size_t p = 0; p < static_cast<size_t>(header.width) * header.height; ++p) {
    const unsigned alpha = rgba[p * 4 + 3];
    for (size_t c = 0; c < 3; ++c) {  // on black: value * alpha / 255, rounded
      image.pixels[p * 3 + c] = static_cast<uint8_t>((rgba[p * 4 + c] * alpha + 127) / 255);
    }
  }
  return image;
}

}  // namespace

ImageFormat sniff_image_format(const uint8_t* data, size_t size) {
  if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) {
    return ImageFormat::kJpeg;
  }
  static const uint8_t kPngMagic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (size >= 8 && std::memcmp(data, kPngMagic, 8) == 0) {
    return ImageFormat::kPng;
  }
  if (size >= 12 && std::memcmp(data, "RIFF", 4) == 0 && std::memcmp(data + 8, "WEBP", 4) == 0) {
    return ImageFormat::kWebp;
  }
  return ImageFormat::kUnknown;
}

ImageHeader read_image_header(const uint8_t* data, size_t size) {
  switch (sniff_image_format(data, size)) {
    case ImageFormat::kJpeg:
      return jpeg_header(data, size);
    case ImageFormat::kPng:
      return png_header(data, size);
    case ImageFormat::kWebp:
      return webp_header(data, size);
    case ImageFormat::kUnknown:
      break;
  }
  throw ImageDecodeError("not a JPEG, PNG or WebP image");
}

Image decode_image(const uint8_t* data, size_t size, int min_width, int min_height) {
  switch (sniff_image_format(data, size)) {
    case ImageFormat::kJpeg:
      return decode_jpeg(data, size, min_width, min_height);
    case ImageFormat::kPng:
      return decode_png(data, size);
    case ImageFormat::kWebp:
      return decode_webp(data, size);
    case ImageFormat::kUnknown:
      break;
  }
  throw ImageDecodeError("not a JPEG, PNG or WebP image");
}

}  // namespace duet::data
