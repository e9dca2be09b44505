// Skip counting and rate-limited warnings (see skip_stats.h).
#include "data/skip_stats.h"

#include "common/logging.h"

namespace duet::data {

const char* skip_reason_name(SkipReason reason) {
  switch (reason) {
    case SkipReason::kCorruptImage:
      return "corrupt_image";
    case SkipReason::kMissingImage:
      return "missing_image";
    case SkipReason::kMissingCaption:
      return "missing_caption";
    case SkipReason::kEmptyCaption:
      return "empty_caption";
    case SkipReason::kMissingLabel:
      return "missing_label";
    case SkipReason::kUnreadableFile:
      return "unreadable_file";
    case SkipReason::kBadRow:
      return "bad_row";
    case SkipReason::kTarError:
      return "tar_error";
    case SkipReason::kSampleError:
      return "sample_error";
  }
  return "unknown";
}

void SkipStats::record(SkipReason reason, const std::string& where, const std::string& detail) {
  const int64_t n = ++counts_[static_cast<size_t>(reason)];
  if (n <= kDetailedWarnings) {
    log::get("data")->warn(
        "skipping {} ({}): {}{}", where, skip_reason_name(reason), detail,
        n == kDetailedWarnings ? " (further skips of this kind are counted)" : "");
    return;
  }
  int64_t m = n;
  while (m % 10 == 0) {
    m /= 10;
  }
  if (m == 1) {  // n is a power of ten
    log::get("data")->warn("{} samples skipped so far for {}", n, skip_reason_name(reason));
  }
}

int64_t SkipStats::count(SkipReason reason) const {
  return counts_[static_cast<size_t>(reason)].load();
}

int64_t SkipStats::total() const {
  int64_t t = 0;
  for (const auto& c : counts_) {
    t += c.load();
  }
  return t;
}

std::map<std::string, int64_t> SkipStats::by_reason() const {
  std::map<std::string, int64_t> out;
  for (int i = 0; i < kSkipReasonCount; ++i) {
    if (const int64_t n = counts_[static_cast<size_t>(i)].load(); n > 0) {
      out[skip_reason_name(static_cast<SkipReason>(i))] = n;
    }
  }
  return out;
}

}  // namespace duet::data
