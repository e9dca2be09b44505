#pragma once
// What sources hand to the loader: one raw (still encoded) sample, and the reasons a sample can
// be skipped. Torch-free.
#include <cstdint>
#include <optional>
#include <string>

namespace duet::data {

// Why a sample was dropped. Counted per reason in the loader's stats and `duet data inspect`.
enum class SkipReason {
  kCorruptImage,    // undecodable, truncated or unsupported image data
  kMissingImage,    // WebDataset key without a .jpg/.jpeg/.png/.webp member
  kMissingCaption,  // no .txt member (or no caption column value)
  kEmptyCaption,    // caption is empty or whitespace
  kMissingLabel,    // a labelled set's sample without .cls or an integer caption
  kUnreadableFile,  // CSV image path that cannot be read
  kBadRow,          // CSV row with the wrong number of columns
  kTarError,        // garbled or truncated tar: the rest of that shard is lost
  kSampleError,     // any other failure while processing the sample (out of memory, ...)
};
constexpr int kSkipReasonCount = 9;

// Stable snake_case names used in stats, logs and JSON ("corrupt_image", ...).
const char* skip_reason_name(SkipReason reason);

struct RawSample {
  int source = 0;          // index of the source (pattern) it came from
  std::string where;       // "shard.tar:KEY" or "file.csv:LINE", for messages
  std::string image;       // encoded bytes (WebDataset), or empty when image_path is set
  std::string image_path;  // file to read (CSV sources)
  std::optional<std::string> caption;
  std::optional<int64_t> label;       // KEY.cls
  std::string json;                   // KEY.json verbatim, empty when absent
  std::optional<SkipReason> problem;  // already known to be unusable while reading
  std::string problem_detail;
  // Position in the rank's current pass over its part (0, 1, ...), and the samples per pass once
  // one pass has ended (0 before). When the stream repeats, every pass yields the same samples.
  int64_t pass_index = 0;
  int64_t pass_size = 0;
};

}  // namespace duet::data
