#pragma once
// CSV/TSV image-text sources, as OpenCLIP reads them (--csv-img-key, --csv-caption-key,
// --csv-separator): a header row naming the columns, then one sample per row. Image paths are
// relative to the CSV file's directory unless absolute. Fields may be double-quoted (RFC 4180:
// separators and newlines inside quotes, "" for a quote). A missing file or a header without
// the two columns is a duet::Error; a row with too few columns becomes a skipped sample.
// Torch-free.
#include <cstdint>
#include <string>
#include <vector>

namespace duet::data {

struct CsvOptions {
  std::string separator = "\t";  // one character; the two characters "\t" also mean a tab
  std::string img_key = "filepath";
  std::string caption_key = "title";
};

struct CsvRow {
  int64_t line = 0;        // 1-based line of the row's start, for messages
  std::string image_path;  // resolved against the CSV's directory
  std::string caption;
  bool malformed = false;  // too few columns
};

std::vector<CsvRow> read_csv_source(const std::string& path, const CsvOptions& options);

}  // namespace duet::data
