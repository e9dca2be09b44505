#pragma once
// Reading WebDataset tar shards as img2dataset writes them: consecutive members sharing a key
// (the member path up to the first '.' of its file name) form one sample; KEY.jpg / KEY.jpeg /
// KEY.png / KEY.webp is the image, KEY.txt the caption, KEY.cls an integer class index,
// KEY.json metadata (kept verbatim); other members are ignored. Reading goes through libarchive
// (tar, pax, GNU; gzip/zstd/... compressed shards too). A damaged member header is reported as one
// kTarError item and reading resumes at the next valid header (libarchive resynchronises). A
// truncated or otherwise unreadable archive ends the shard: the sample being read is returned with
// problem = kTarError (or, when no sample was being read, one item carrying only that problem),
// so every archive error reaches the loader's skip counts exactly once. Torch-free.
#include <memory>
#include <string>

#include "data/sample.h"

struct archive;

namespace duet::data {

class TarShardReader {
 public:
  // Opens the shard; a file that cannot be opened is reported through error() and yields
  // nothing (the loader counts it as a tar error and goes on).
  TarShardReader(std::string path, int source);
  ~TarShardReader();
  TarShardReader(const TarShardReader&) = delete;
  TarShardReader& operator=(const TarShardReader&) = delete;

  // The next sample; false at the end of the shard (or after an archive error).
  bool next(RawSample& out);

  // Empty unless the archive could not be opened or read to its end.
  const std::string& error() const { return error_; }

 private:
  struct Member {
    std::string key;
    std::string ext;  // lower case, after the first '.'
    std::string data;
  };
  bool read_member(Member& out);  // false at the end or on an error
  void add(RawSample& sample, Member& member) const;

  std::string path_;
  int source_ = 0;
  archive* archive_ = nullptr;
  bool done_ = false;
  bool has_pending_ = false;
  Member pending_;
  std::string error_;
  bool error_returned_ = false;  // the error has been handed out with a sample
  std::string resync_error_;     // a damaged header was skipped; reported as its own item
  int retries_ = 0;
};

// Splits a member path into WebDataset's (key, extension): "dir/a.b.jpg" -> ("dir/a", "b.jpg").
// The extension is lower-cased. A path without a '.' in its file name has an empty extension.
std::pair<std::string, std::string> split_member_name(const std::string& path);

// Samples (keys with an image member) in a shard, from member headers only. Errors count as
// the end of the shard.
int64_t count_shard_samples(const std::string& path);

}  // namespace duet::data
