#pragma once
// Small helpers for the c10d store's byte values and for messages (rank lists, exceptions).
#include <cstdint>
#include <string>
#include <vector>

namespace duet::distributed {

inline std::string as_text(const std::vector<uint8_t>& bytes) {
  return std::string(bytes.begin(), bytes.end());
}

inline std::vector<uint8_t> as_bytes(const std::string& text) {
  return std::vector<uint8_t>(text.begin(), text.end());
}

// The first line of an exception message: c10::Error appends a C++ backtrace to what().
inline std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

// "rank 2", "ranks 1 and 3", "ranks 1, 2 and 3"
inline std::string name_ranks(const std::vector<int>& ranks) {
  std::string s;
  for (size_t i = 0; i < ranks.size(); ++i) {
    s += (i == 0 ? "" : (i + 1 == ranks.size() ? " and " : ", ")) + std::to_string(ranks[i]);
  }
  return (ranks.size() == 1 ? "rank " : "ranks ") + s;
}

}  // namespace duet::distributed
