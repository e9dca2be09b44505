// String helpers (see strings.h).
#include "common/strings.h"

#include <cctype>

namespace duet {

std::string trim(std::string_view text) {
  return trim_if(text, [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; });
}

}  // namespace duet
