// IDX reading (plain and gzip) and its errors.
#include <zlib.h>
#include <catch2/catch.hpp>

#include "common/error.h"
#include "data/idx.h"
#include "data_fixtures.h"

using namespace duet::data;
using namespace duet::data::testing;

namespace {

std::string idx_bytes(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& data) {
  std::string s = {0, 0, 0x08, static_cast<char>(dims.size())};
  for (uint32_t d : dims) {
    s.push_back(static_cast<char>(d >> 24));
    s.push_back(static_cast<char>(d >> 16));
    s.push_back(static_cast<char>(d >> 8));
    s.push_back(static_cast<char>(d));
  }
  s.append(data.begin(), data.end());
  return s;
}

void write_gz(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
}

}  // namespace

TEST_CASE("idx: reads plain and gzipped arrays") {
  TempDir dir("idx");
  std::vector<uint8_t> data(2 * 3 * 4);
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = static_cast<uint8_t>(i * 5);
  }
  const std::string bytes = idx_bytes({2, 3, 4}, data);
  write_file(dir.file("a.idx"), bytes);
  write_gz(dir.file("a.idx.gz"), bytes);
  for (const char* name : {"a.idx", "a.idx.gz"}) {
    const IdxArray a = read_idx(dir.file(name));
    CHECK(a.shape == std::vector<int64_t>{2, 3, 4});
    CHECK(a.data == data);
  }
}

TEST_CASE("idx: truncated, foreign and missing files are errors") {
  TempDir dir("idx_bad");
  const std::string bytes = idx_bytes({10}, std::vector<uint8_t>(10, 1));
  write_gz(dir.file("short.gz"), bytes.substr(0, bytes.size() - 3));
  CHECK_THROWS_WITH(read_idx(dir.file("short.gz")), Catch::Contains("truncated"));
  write_file(dir.file("text"), "hello world, not idx");
  CHECK_THROWS_WITH(read_idx(dir.file("text")), Catch::Contains("not an IDX file"));
  CHECK_THROWS_WITH(read_idx(dir.file("missing")), Catch::Contains("missing"));
}
