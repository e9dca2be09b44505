// Brace expansion (see brace.h). Recursive on the first top-level brace group: the prefix, each
// alternative of the group, and the expansion of the rest, concatenated.
#include "data/brace.h"

#include <cctype>

#include "common/error.h"

namespace duet::data {
namespace {

constexpr long long kMaxRange = 10'000'000;

bool all_digits(const std::string& s) {
  if (s.empty()) {
    return false;
  }
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return true;
}

// The alternatives of one group's body: "a,b,c" or "lo..hi".
std::vector<std::string> alternatives(const std::string& body, const std::string& pattern) {
  const size_t dots = body.find("..");
  if (dots != std::string::npos && body.find_first_of(",{") == std::string::npos) {
    const std::string lo_text = body.substr(0, dots);
    const std::string hi_text = body.substr(dots + 2);
    DUET_CHECK(
        all_digits(lo_text) && all_digits(hi_text) && lo_text.size() < 18 && hi_text.size() < 18,
        "bad brace range '{{{}}}' in '{}': expected {{LO..HI}} with non-negative integers", body,
        pattern);
    const long long lo = std::stoll(lo_text);
    const long long hi = std::stoll(hi_text);
    DUET_CHECK(lo <= hi, "bad brace range '{{{}}}' in '{}': {} > {}", body, pattern, lo, hi);
    DUET_CHECK(hi - lo < kMaxRange, "brace range '{{{}}}' in '{}' has more than {} values", body,
               pattern, kMaxRange);
    const bool padded =
        (lo_text.size() > 1 && lo_text[0] == '0') || (hi_text.size() > 1 && hi_text[0] == '0');
    const size_t width = padded ? std::max(lo_text.size(), hi_text.size()) : 0;
    std::vector<std::string> out;
    out.reserve(static_cast<size_t>(hi - lo + 1));
    for (long long v = lo; v <= hi; ++v) {
      std::string s = std::to_string(v);
      if (s.size() < width) {
        s.insert(0, width - s.size(), '0');
      }
      out.push_back(std::move(s));
    }
    return out;
  }
  std::vector<std::string> out;
  size_t start = 0;
  int depth = 0;
  for (size_t i = 0; i <= body.size(); ++i) {
    if (i == body.size() || (body[i] == ',' && depth == 0)) {
      out.push_back(body.substr(start, i - start));
      start = i + 1;
    } else if (body[i] == '{') {
      ++depth;
    } else if (body[i] == '}') {
      --depth;
    }
  }
  DUET_CHECK(out.size() > 1 || body.find('{') != std::string::npos,
             "bad brace group '{{{}}}' in '{}': expected {{a,b,...}} or {{LO..HI}}", body, pattern);
  return out;
}

void expand_into(const std::string& text, const std::string& pattern,
                 std::vector<std::string>& out) {
  const size_t open = text.find('{');
  if (open == std::string::npos) {
    DUET_CHECK(text.find('}') == std::string::npos, "unbalanced '}}' in shard pattern '{}'",
               pattern);
    out.push_back(text);
    return;
  }
  DUET_CHECK(text.substr(0, open).find('}') == std::string::npos,
             "unbalanced '}}' in shard pattern '{}'", pattern);
  int depth = 0;
  size_t close = std::string::npos;
  for (size_t i = open; i < text.size(); ++i) {
    if (text[i] == '{') {
      ++depth;
    } else if (text[i] == '}' && --depth == 0) {
      close = i;
      break;
    }
  }
  DUET_CHECK(close != std::string::npos, "unbalanced '{{' in shard pattern '{}'", pattern);
  const std::string prefix = text.substr(0, open);
  const std::string rest = text.substr(close + 1);
  for (const std::string& alt : alternatives(text.substr(open + 1, close - open - 1), pattern)) {
    expand_into(prefix + alt + rest, pattern, out);
  }
}

}  // namespace

std::vector<std::string> expand_braces(const std::string& pattern) {
  std::vector<std::string> out;
  expand_into(pattern, pattern, out);
  return out;
}

}  // namespace duet::data
