// Source resolution (see source_set.h).
#include "data/source_set.h"

#include <algorithm>
#include <filesystem>

#include "common/error.h"
#include "data/brace.h"
#include "data/webdataset_source.h"

namespace duet::data {
namespace {

namespace fs = std::filesystem;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_csv(const std::string& path) { return ends_with(path, ".csv") || ends_with(path, ".tsv"); }

bool is_tar(const std::string& path) {
  for (const char* ext : {".tar", ".tar.gz", ".tgz", ".tar.zst", ".tar.xz", ".tar.bz2"}) {
    if (ends_with(path, ext)) {
      return true;
    }
  }
  return false;
}

}  // namespace

SourceSet resolve_sources(const std::vector<std::string>& sources, const CsvOptions& csv) {
  DUET_CHECK(!sources.empty(), "no data sources given");
  SourceSet set;
  for (const std::string& source : sources) {
    const int index = static_cast<int>(set.names.size());
    set.names.push_back(source);
    std::vector<std::string> paths;
    if (std::error_code ec; fs::is_directory(source, ec)) {
      DUET_CHECK(!is_csv(source), "data source '{}' is a directory, not a CSV/TSV file", source);
      for (const auto& entry : fs::directory_iterator(source)) {
        if (entry.is_regular_file() && is_tar(entry.path().string())) {
          paths.push_back(entry.path().string());
        }
      }
      std::sort(paths.begin(), paths.end());
      DUET_CHECK(!paths.empty(), "data source '{}' is a directory without tar shards", source);
    } else {
      paths = expand_braces(source);
    }
    for (const std::string& path : paths) {
      std::error_code ec;
      DUET_CHECK(fs::is_regular_file(path, ec),
                 "data source '{}': '{}' does not exist or is not a file", source, path);
      if (is_csv(path)) {
        auto rows = std::make_shared<const std::vector<CsvRow>>(read_csv_source(path, csv));
        const auto n = static_cast<int64_t>(rows->size());
        DUET_CHECK(n > 0, "CSV source '{}' has a header but no rows", path);
        for (int64_t begin = 0; begin < n; begin += kCsvShardRows) {
          set.shards.push_back({index, path, rows, begin, std::min(n, begin + kCsvShardRows)});
        }
      } else if (is_tar(path)) {
        set.shards.push_back({index, path, nullptr, 0, 0});
      } else {
        fail(
            "data source '{}': cannot tell the kind of '{}' (expected .csv, .tsv, .tar, "
            ".tar.gz or a directory of shards)",
            source, path);
      }
    }
  }
  return set;
}

std::vector<int64_t> count_samples(const SourceSet& set) {
  std::vector<int64_t> counts;
  counts.reserve(set.shards.size());
  for (const Shard& shard : set.shards) {
    counts.push_back(shard.is_csv() ? shard.row_end - shard.row_begin
                                    : count_shard_samples(shard.path));
  }
  return counts;
}

}  // namespace duet::data
