#pragma once
// Writes WebDataset tar shards with libarchive (POSIX ustar/pax, reproducible: mtime 0,
// owner 0, mode 0644). The shard is written to PATH.tmp and renamed on close(), so a reader
// never sees a half-written shard. Torch-free.
#include <string>

struct archive;

namespace duet::data {

class TarWriter {
 public:
  explicit TarWriter(std::string path);
  ~TarWriter();  // abandons (removes) the temporary file unless close() ran
  TarWriter(const TarWriter&) = delete;
  TarWriter& operator=(const TarWriter&) = delete;

  // Appends a regular file member named `name` (e.g. "000042.png").
  void add(const std::string& name, const std::string& data);
  void close();

 private:
  std::string path_;
  std::string tmp_path_;
  archive* archive_ = nullptr;
};

}  // namespace duet::data
