#pragma once
// Helpers shared by the data tests: temporary directories, synthetic images, shards and CSVs
// written by the tests themselves, and a byte-level tokenizer so the loader tests do not
// depend on the real tokenizers.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "text/tokenizer.h"

namespace duet::data::testing {

// A fresh directory under the system temp dir, removed on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& name);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// Deterministic RGB test pattern [h, w, 3] that depends on `seed`.
std::vector<uint8_t> pattern_rgb(int width, int height, int seed);

std::string pattern_png(int width, int height, int seed);
std::string pattern_jpeg(int width, int height, int seed);

void write_file(const std::string& path, const std::string& bytes);

// One WebDataset sample as (member suffix, bytes), e.g. {".png", ...}, {".txt", "a cat"}.
struct Member {
  std::string ext;
  std::string data;
};
struct ShardSample {
  std::string key;
  std::vector<Member> members;
};
void write_shard(const std::string& path, const std::vector<ShardSample>& samples);

// A shard of `count` valid samples keyed PREFIX_0000..., caption "PREFIX i", PNG images of
// varying size, class index i % 10.
void write_valid_shard(const std::string& path, const std::string& prefix, int count);

// ids = bytes + 3; SOT 1, EOT 2, pad 0.
class ByteTokenizer : public text::Tokenizer {
 public:
  std::vector<int64_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int64_t>& ids) const override;
  text::TokenizerInfo info() const override;
};

}  // namespace duet::data::testing
