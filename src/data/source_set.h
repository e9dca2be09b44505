#pragma once
// Resolves source patterns into the shards the loader reads. A source is
//   - a CSV/TSV file (.csv, .tsv): parsed up front and cut into shards of kCsvShardRows rows,
//     so CSV data shuffles and splits across ranks like tar shards do;
//   - a WebDataset tar shard or brace pattern of shards (.tar, .tar.gz, .tgz, ...);
//   - a directory: the tar shards directly inside it, in name order.
// Several sources are mixed: their shards form one pool. A missing path, a bad brace pattern,
// an unknown kind of file or a directory without shards is a duet::Error naming the source.
// Torch-free.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/csv_source.h"

namespace duet::data {

constexpr int64_t kCsvShardRows = 1024;

struct Shard {
  int source = 0;    // index into SourceSet::names
  std::string path;  // the tar shard or the CSV file
  // CSV shards: rows [row_begin, row_end) of the parsed file.
  std::shared_ptr<const std::vector<CsvRow>> rows;
  int64_t row_begin = 0;
  int64_t row_end = 0;

  bool is_csv() const { return rows != nullptr; }
};

struct SourceSet {
  std::vector<std::string> names;  // the patterns as given
  std::vector<Shard> shards;       // in source order, then shard order
};

SourceSet resolve_sources(const std::vector<std::string>& sources, const CsvOptions& csv);

// Samples per shard (CSV: rows; tar: keys with an image, from member headers).
std::vector<int64_t> count_samples(const SourceSet& set);

}  // namespace duet::data
