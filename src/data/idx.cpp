// IDX reading through zlib's gz* API, which reads plain and gzip-compressed files alike.
#include "data/idx.h"

#include <zlib.h>

#include <memory>

#include "common/error.h"

namespace duet::data {
namespace {

struct GzCloser {
  void operator()(gzFile_s* f) const { gzclose(f); }
};

void read_exact(gzFile file, void* out, size_t n, const std::string& path) {
  auto* p = static_cast<unsigned char*>(out);
  while (n > 0) {
    const unsigned chunk = static_cast<unsigned>(std::min<size_t>(n, 1u << 30));
    const int got = gzread(file, p, chunk);
    if (got <= 0) {
      int code = 0;
      const char* message = gzerror(file, &code);
      fail("IDX file '{}' is truncated or unreadable ({})", path,
           code != Z_OK ? message : "unexpected end of file");
    }
    p += got;
    n -= static_cast<size_t>(got);
  }
}

}  // namespace

IdxArray read_idx(const std::string& path) {
  std::unique_ptr<gzFile_s, GzCloser> file(gzopen(path.c_str(), "rb"));
  DUET_CHECK(file != nullptr, "cannot open IDX file '{}'", path);
  gzbuffer(file.get(), 1 << 20);
  unsigned char magic[4];
  read_exact(file.get(), magic, 4, path);
  DUET_CHECK(magic[0] == 0 && magic[1] == 0, "'{}' is not an IDX file (bad magic)", path);
  DUET_CHECK(magic[2] == 0x08,
             "IDX file '{}' holds type 0x{:02x}; only unsigned bytes (0x08) "
             "are supported",
             path, magic[2]);
  const int rank = magic[3];
  DUET_CHECK(rank >= 1 && rank <= 4, "IDX file '{}' has {} dimensions", path, rank);
  IdxArray out;
  size_t total = 1;
  for (int d = 0; d < rank; ++d) {
    unsigned char b[4];
    read_exact(file.get(), b, 4, path);
    const uint32_t dim =
        (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | uint32_t{b[3]};
    DUET_CHECK(dim > 0 && dim < (1u << 28), "IDX file '{}' has a bad dimension {}", path, dim);
    out.shape.push_back(dim);
    total *= dim;
  }
  DUET_CHECK(total < (size_t{1} << 34), "IDX file '{}' is implausibly large", path);
  out.data.resize(total);
  read_exact(file.get(), out.data.data(), total, path);
  return out;
}

}  // namespace duet::data
