#pragma once
// Image encoding to bytes in memory, for writing datasets (`duet data fashion-mnist`), test
// fixtures and benchmark shards: PNG through libpng's simplified API (fast compression), JPEG
// through TurboJPEG. Failures throw duet::Error.
#include <cstdint>
#include <string>
#include <vector>

namespace duet::data {

// pixels: [height, width, channels] with channels 1 (grey) or 3 (RGB).
std::string encode_png(const uint8_t* pixels, int width, int height, int channels);

// pixels: [height, width, channels] with channels 1 (grey) or 3 (RGB); 4:2:0 subsampling for
// RGB, as typical web JPEGs.
std::string encode_jpeg(const uint8_t* pixels, int width, int height, int channels, int quality);

}  // namespace duet::data
