// String helpers (see strings.h).
#include "common/strings.h"

#include <cctype>

namespace duet {

std::string trim(std::string_view text) {
  return trim_if(text, [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; });
}

std::string markup_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        // Control characters other than tab and newline are not allowed in XML 1.0.
        out += static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' ? ' ' : c;
    }
  }
  return out;
}

}  // namespace duet
