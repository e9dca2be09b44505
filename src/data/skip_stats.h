#pragma once
// Thread-safe counts of skipped samples by reason, with rate-limited warnings: the first few
// skips of each reason are logged with where and why, then only a running total at 10, 100,
// 1000, ... of that reason, so a bad dataset cannot flood the log. Torch-free.
#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <string>

#include "data/sample.h"

namespace duet::data {

class SkipStats {
 public:
  static constexpr int64_t kDetailedWarnings = 5;

  void record(SkipReason reason, const std::string& where, const std::string& detail);
  int64_t count(SkipReason reason) const;
  int64_t total() const;
  // Non-zero counts by reason name.
  std::map<std::string, int64_t> by_reason() const;

 private:
  std::array<std::atomic<int64_t>, kSkipReasonCount> counts_{};
};

}  // namespace duet::data
