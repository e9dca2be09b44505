// Test helpers (see data_fixtures.h).
#include "data_fixtures.h"

#include <fmt/format.h>

#include <fstream>
#include <random>

#include <unistd.h>

#include "data/image_encode.h"
#include "data/tar_writer.h"

namespace duet::data::testing {

TempDir::TempDir(const std::string& name) {
  std::random_device rd;
  path_ =
      std::filesystem::temp_directory_path() / fmt::format("duet_{}_{}_{}", name, ::getpid(), rd());
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::vector<uint8_t> pattern_rgb(int width, int height, int seed) {
  std::vector<uint8_t> p(static_cast<size_t>(width) * height * 3);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      uint8_t* px = &p[(static_cast<size_t>(y) * width + x) * 3];
      px[0] = static_cast<uint8_t>((x * 255) / std::max(1, width - 1));
      px[1] = static_cast<uint8_t>((y * 255) / std::max(1, height - 1));
      px[2] = static_cast<uint8_t>((x * 7 + y * 13 + seed * 31) & 0xff);
    }
  }
  return p;
}

std::string pattern_png(int width, int height, int seed) {
  const auto p = pattern_rgb(width, height, seed);
  return encode_png(p.data(), width, height, 3);
}

std::string pattern_jpeg(int width, int height, int seed) {
  const auto p = pattern_rgb(width, height, seed);
  return encode_jpeg(p.data(), width, height, 3, 90);
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void write_shard(const std::string& path, const std::vector<ShardSample>& samples) {
  TarWriter tar(path);
  for (const auto& s : samples) {
    for (const auto& m : s.members) {
      tar.add(s.key + m.ext, m.data);
    }
  }
  tar.close();
}

void write_valid_shard(const std::string& path, const std::string& prefix, int count) {
  std::vector<ShardSample> samples;
  for (int i = 0; i < count; ++i) {
    const std::string key = fmt::format("{}_{:04d}", prefix, i);
    samples.push_back({key,
                       {{".png", pattern_png(20 + i % 7, 16 + i % 5, i)},
                        {".txt", fmt::format("{} {}", prefix, i)},
                        {".cls", std::to_string(i % 10)}}});
  }
  write_shard(path, samples);
}

std::vector<int64_t> ByteTokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  for (unsigned char c : text) {
    ids.push_back(static_cast<int64_t>(c) + 3);
  }
  return ids;
}

std::string ByteTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string text;
  for (int64_t id : ids) {
    if (id >= 3 && id < 259) {
      text.push_back(static_cast<char>(id - 3));
    }
  }
  return text;
}

text::TokenizerInfo ByteTokenizer::info() const {
  text::TokenizerInfo i;
  i.vocab_size = 259;
  i.sot_id = 1;
  i.eot_id = 2;
  i.pad_id = 0;
  return i;
}

}  // namespace duet::data::testing
