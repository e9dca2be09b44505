// PNG and JPEG encoding (see image_encode.h).
#include "data/image_encode.h"

#include <png.h>
#include <turbojpeg.h>

#include <cstring>
#include <memory>

#include "common/error.h"

namespace duet::data {
namespace {

struct TjDeleter {
  void operator()(void* handle) const { tjDestroy(handle); }
};

}  // namespace

std::string encode_png(const uint8_t* pixels, int width, int height, int channels) {
  DUET_CHECK(channels == 1 || channels == 3, "encode_png: channels must be 1 or 3, got {}",
             channels);
  png_image png;
  std::memset(&png, 0, sizeof(png));
  png.version = PNG_IMAGE_VERSION;
  png.width = static_cast<png_uint_32>(width);
  png.height = static_cast<png_uint_32>(height);
  png.format = channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
  png.flags = PNG_IMAGE_FLAG_FAST;
  png_alloc_size_t size = 0;
  // First call sizes the output, second writes it.
  DUET_CHECK(png_image_write_to_memory(&png, nullptr, &size, 0, pixels, 0, nullptr) != 0,
             "PNG encoding failed: {}", png.message);
  std::string out(size, '\0');
  DUET_CHECK(png_image_write_to_memory(&png, out.data(), &size, 0, pixels, 0, nullptr) != 0,
             "PNG encoding failed: {}", png.message);
  out.resize(size);
  return out;
}

std::string encode_jpeg(const uint8_t* pixels, int width, int height, int channels, int quality) {
  DUET_CHECK(channels == 1 || channels == 3, "encode_jpeg: channels must be 1 or 3, got {}",
             channels);
  std::unique_ptr<void, TjDeleter> tj(tjInitCompress());
  DUET_CHECK(tj != nullptr, "cannot create a TurboJPEG compressor");
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  const int format = channels == 1 ? TJPF_GRAY : TJPF_RGB;
  const int subsampling = channels == 1 ? TJSAMP_GRAY : TJSAMP_420;
  if (tjCompress2(tj.get(), pixels, width, 0, height, format, &buffer, &size, subsampling, quality,
                  0) != 0) {
    const std::string message = tjGetErrorStr2(tj.get());
    tjFree(buffer);
    fail("JPEG encoding failed: {}", message);
  }
  std::string out(reinterpret_cast<const char*>(buffer), size);
  tjFree(buffer);
  return out;
}

}  // namespace duet::data
