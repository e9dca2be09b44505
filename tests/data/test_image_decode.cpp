// JPEG/PNG decoding: round trips, grey and palette conversion, DCT scaling, corrupt input.
#include <png.h>
#include <catch2/catch.hpp>

#include <cstring>

#include "data/image_decode.h"
#include "data/image_encode.h"
#include "data_fixtures.h"

using namespace duet::data;
using namespace duet::data::testing;

namespace {

Image decode(const std::string& bytes, int min_w = 0, int min_h = 0) {
  return decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), min_w, min_h);
}

double mean_abs_diff(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    s += std::abs(static_cast<int>(a[i]) - static_cast<int>(b[i]));
  }
  return s / static_cast<double>(a.size());
}

// An 8-bit palette PNG with 4 colours, written with libpng's full API.
std::string palette_png(int w, int h) {
  std::string out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  png_set_write_fn(
      png, &out,
      [](png_structp p, png_bytep data, png_size_t n) {
        static_cast<std::string*>(png_get_io_ptr(p))->append(reinterpret_cast<char*>(data), n);
      },
      nullptr);
  png_set_IHDR(png, info, static_cast<png_uint_32>(w), static_cast<png_uint_32>(h), 8,
               PNG_COLOR_TYPE_PALETTE, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_color palette[4] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {10, 20, 30}};
  png_set_PLTE(png, info, palette, 4);
  png_write_info(png, info);
  std::vector<uint8_t> row(static_cast<size_t>(w));
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      row[static_cast<size_t>(x)] = static_cast<uint8_t>((x + y) % 4);
    }
    png_write_row(png, row.data());
  }
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}

// A PNG that is only a valid signature and IHDR chunk (right CRC) claiming w x h pixels.
std::string header_only_png(uint32_t w, uint32_t h) {
  std::string out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  png_set_write_fn(
      png, &out,
      [](png_structp p, png_bytep data, png_size_t n) {
        static_cast<std::string*>(png_get_io_ptr(p))->append(reinterpret_cast<char*>(data), n);
      },
      nullptr);
  png_set_IHDR(png, info, w, h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  png_destroy_write_struct(&png, &info);
  return out;
}

// A real JPEG whose SOF header is patched to claim w x h pixels.
std::string jpeg_claiming(uint16_t w, uint16_t h) {
  std::string bytes = pattern_jpeg(16, 16, 5);
  for (size_t i = 2; i + 9 < bytes.size(); ++i) {
    const auto marker = static_cast<uint8_t>(bytes[i + 1]);
    if (static_cast<uint8_t>(bytes[i]) == 0xFF && (marker == 0xC0 || marker == 0xC2)) {
      // FFCx, length (2), precision (1), height (2), width (2)
      bytes[i + 5] = static_cast<char>(h >> 8);
      bytes[i + 6] = static_cast<char>(h & 0xFF);
      bytes[i + 7] = static_cast<char>(w >> 8);
      bytes[i + 8] = static_cast<char>(w & 0xFF);
      return bytes;
    }
  }
  FAIL("no SOF marker in the test JPEG");
  return bytes;
}

}  // namespace

TEST_CASE("decode: PNG round trip is exact, grey becomes RGB") {
  const auto rgb = pattern_rgb(33, 17, 4);
  const Image a = decode(encode_png(rgb.data(), 33, 17, 3));
  CHECK(a.width == 33);
  CHECK(a.height == 17);
  CHECK(a.pixels == rgb);

  std::vector<uint8_t> grey(12 * 5);
  for (size_t i = 0; i < grey.size(); ++i) {
    grey[i] = static_cast<uint8_t>(i * 4);
  }
  const Image g = decode(encode_png(grey.data(), 12, 5, 1));
  REQUIRE(g.pixels.size() == grey.size() * 3);
  for (size_t i = 0; i < grey.size(); ++i) {
    CHECK(g.pixels[3 * i] == grey[i]);
    CHECK(g.pixels[3 * i + 1] == grey[i]);
    CHECK(g.pixels[3 * i + 2] == grey[i]);
  }
}

TEST_CASE("decode: palette PNG becomes RGB") {
  const Image p = decode(palette_png(7, 3));
  REQUIRE(p.width == 7);
  CHECK(p.pixels[0] == 255);  // (0,0) -> red
  CHECK(p.pixels[1] == 0);
  CHECK(p.pixels[3 * 1 + 1] == 255);  // (1,0) -> green
  CHECK(p.pixels[3 * 3 + 2] == 30);   // (3,0) -> (10,20,30)
}

TEST_CASE("decode: JPEG round trip is close, grey JPEG becomes RGB") {
  const auto rgb = pattern_rgb(64, 48, 1);
  const Image j = decode(encode_jpeg(rgb.data(), 64, 48, 3, 95));
  CHECK(j.width == 64);
  CHECK(j.height == 48);
  CHECK(mean_abs_diff(j.pixels, rgb) < 10.0);  // the pattern's blue channel has sharp edges

  std::vector<uint8_t> grey(40 * 30, 77);
  const Image g = decode(encode_jpeg(grey.data(), 40, 30, 1, 90));
  REQUIRE(g.pixels.size() == 40 * 30 * 3);
  CHECK(std::abs(g.pixels[100] - 77) <= 1);
  CHECK(g.pixels[99] == g.pixels[100]);
}

TEST_CASE("decode: headers without decoding") {
  const auto bytes = pattern_jpeg(50, 20, 0);
  const ImageHeader h =
      read_image_header(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  CHECK(h.format == ImageFormat::kJpeg);
  CHECK(h.width == 50);
  CHECK(h.height == 20);
  const auto png = pattern_png(9, 11, 0);
  const ImageHeader p = read_image_header(reinterpret_cast<const uint8_t*>(png.data()), png.size());
  CHECK(p.format == ImageFormat::kPng);
  CHECK(p.width == 9);
  CHECK(p.height == 11);
}

TEST_CASE("decode: JPEG DCT scaling keeps at least the requested size") {
  const auto bytes = pattern_jpeg(400, 300, 2);
  const Image full = decode(bytes);
  CHECK(full.width == 400);
  const Image half = decode(bytes, 200, 150);
  CHECK(half.width == 200);
  CHECK(half.height == 150);
  const Image some = decode(bytes, 201, 10);
  CHECK(some.width >= 201);
  CHECK(some.width < 400);
  CHECK(std::abs(some.height * 400 - some.width * 300) <= 400);  // same aspect up to rounding
  CHECK(decode(bytes, 399, 1).width == 400);
}

TEST_CASE("decode: corrupt, truncated and foreign bytes throw ImageDecodeError") {
  const auto jpeg = pattern_jpeg(64, 64, 3);
  const auto png = pattern_png(64, 64, 3);
  CHECK_THROWS_AS(decode(jpeg.substr(0, jpeg.size() / 2)), ImageDecodeError);
  CHECK_THROWS_AS(decode(png.substr(0, png.size() / 2)), ImageDecodeError);
  CHECK_THROWS_AS(decode(jpeg.substr(0, 10)), ImageDecodeError);
  CHECK_THROWS_AS(decode(png.substr(0, 20)), ImageDecodeError);
  CHECK_THROWS_AS(decode("GIF89a not supported"), ImageDecodeError);
  CHECK_THROWS_AS(decode(""), ImageDecodeError);
  std::string garbled = png;
  for (size_t i = 60; i < garbled.size() - 20; i += 7) {
    garbled[i] = static_cast<char>(garbled[i] ^ 0x5a);
  }
  CHECK_THROWS_AS(decode(garbled), ImageDecodeError);
}

TEST_CASE("decode: headers claiming huge images are rejected before allocating") {
  for (const auto& [bytes, what] :
       {std::pair<std::string, const char*>{header_only_png(60000, 60000), "PNG 60000x60000"},
        {header_only_png(20000, 20000), "PNG 20000x20000"},
        {jpeg_claiming(60000, 60000), "JPEG 60000x60000"}}) {
    INFO(what);
    const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
    CHECK_THROWS_WITH(read_image_header(data, bytes.size()), Catch::Contains("image too large"));
    CHECK_THROWS_WITH(decode(bytes),
                      Catch::Contains("image too large") && Catch::Contains("more than the limit"));
  }
  CHECK_THROWS_WITH(decode(header_only_png(100000, 1)), Catch::Contains("bad image size"));
  // A large but plausible header passes the check (and then fails on the missing data).
  CHECK_THROWS_WITH(decode(header_only_png(4000, 3000)), !Catch::Contains("too large"));
}
