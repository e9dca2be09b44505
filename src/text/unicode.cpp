// Python-compatible Unicode helpers (see unicode.h). utf8proc supplies categories, case
// mappings and NFC; the White_Space list and the Word_Break members of Case_Ignorable are
// spelled out because utf8proc does not expose those properties.
#include "text/unicode.h"

#include <algorithm>
#include <cstdlib>
#include <iterator>
#include <memory>

#include <utf8proc.h>

#include "common/error.h"
#include "common/strings.h"

namespace duet::text {

namespace {

constexpr char32_t kReplacement = 0xFFFD;

// Characters with the White_Space property.
constexpr char32_t kWhiteSpace[] = {0x0009, 0x000A, 0x000B, 0x000C, 0x000D, 0x0020, 0x0085,
                                    0x00A0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004,
                                    0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200A, 0x2028,
                                    0x2029, 0x202F, 0x205F, 0x3000};

// Word_Break values MidLetter, MidNumLet and Single_Quote, which are Case_Ignorable.
constexpr char32_t kWordBreakIgnorable[] = {0x0027, 0x002E, 0x003A, 0x00B7, 0x0387, 0x055F,
                                            0x05F4, 0x2018, 0x2019, 0x2024, 0x2027, 0xFE13,
                                            0xFE52, 0xFE55, 0xFF07, 0xFF0E, 0xFF1A};

utf8proc_category_t category(char32_t c) {
  return utf8proc_category(static_cast<utf8proc_int32_t>(c));
}

// Unicode's Cased property (Lowercase, Uppercase or Lt), approximated by the letter categories
// plus utf8proc's case predicates, which cover the Other_Lowercase/Other_Uppercase characters
// that have case mappings (circled letters, Roman numerals).
bool is_cased(char32_t c) {
  const auto cat = category(c);
  return cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL ||
         cat == UTF8PROC_CATEGORY_LT || utf8proc_islower(static_cast<utf8proc_int32_t>(c)) ||
         utf8proc_isupper(static_cast<utf8proc_int32_t>(c));
}

// Unicode's Case_Ignorable property: categories Mn, Me, Cf, Lm, Sk, and the Word_Break values
// MidLetter, MidNumLet and Single_Quote.
bool is_case_ignorable(char32_t c) {
  switch (category(c)) {
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_SK:
      return true;
    default:
      break;
  }
  return std::find(std::begin(kWordBreakIgnorable), std::end(kWordBreakIgnorable), c) !=
         std::end(kWordBreakIgnorable);
}

// CPython's handle_capital_sigma: text[i] is U+03A3.
char32_t lower_sigma(std::u32string_view text, size_t i) {
  size_t j = i;
  while (j > 0 && is_case_ignorable(text[j - 1])) {
    --j;
  }
  if (j == 0 || !is_cased(text[j - 1])) {
    return 0x03C3;
  }
  size_t k = i + 1;
  while (k < text.size() && is_case_ignorable(text[k])) {
    ++k;
  }
  return k < text.size() && is_cased(text[k]) ? 0x03C3 : 0x03C2;
}

}  // namespace

std::u32string decode_utf8(std::string_view bytes) {
  std::u32string out;
  out.reserve(bytes.size());
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char b = s[i];
    if (b < 0x80) {
      out.push_back(b);
      ++i;
      continue;
    }
    // Sequence length and the allowed range of the second byte (Unicode Table 3-7); anything
    // else is ill-formed, and the maximal prefix that could still start a valid sequence is
    // replaced by one U+FFFD.
    int length = 0;
    unsigned char low = 0x80;
    unsigned char high = 0xBF;
    char32_t c = 0;
    if (b >= 0xC2 && b <= 0xDF) {
      length = 2;
      c = b & 0x1F;
    } else if (b >= 0xE0 && b <= 0xEF) {
      length = 3;
      c = b & 0x0F;
      low = b == 0xE0 ? 0xA0 : 0x80;
      high = b == 0xED ? 0x9F : 0xBF;
    } else if (b >= 0xF0 && b <= 0xF4) {
      length = 4;
      c = b & 0x07;
      low = b == 0xF0 ? 0x90 : 0x80;
      high = b == 0xF4 ? 0x8F : 0xBF;
    } else {
      out.push_back(kReplacement);
      ++i;
      continue;
    }
    size_t k = 1;
    for (; k < static_cast<size_t>(length) && i + k < n; ++k) {
      const unsigned char next = s[i + k];
      const unsigned char lo = k == 1 ? low : 0x80;
      const unsigned char hi = k == 1 ? high : 0xBF;
      if (next < lo || next > hi) {
        break;
      }
      c = (c << 6) | (next & 0x3F);
    }
    if (k == static_cast<size_t>(length)) {
      out.push_back(c);
    } else {
      out.push_back(kReplacement);
    }
    i += k;
  }
  return out;
}

void append_utf8(char32_t c, std::string& out) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

std::string encode_utf8(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t c : text) {
    append_utf8(c, out);
  }
  return out;
}

std::u32string nfc(std::u32string_view text) {
  if (std::all_of(text.begin(), text.end(), [](char32_t c) { return c < 0x80; })) {
    return std::u32string(text);  // ASCII is always NFC
  }
  const std::string utf8 = encode_utf8(text);
  utf8proc_uint8_t* mapped = nullptr;
  const utf8proc_ssize_t length =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(utf8.data()),
                   static_cast<utf8proc_ssize_t>(utf8.size()), &mapped,
                   static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owner(mapped, &std::free);
  // The input is valid UTF-8 by construction, so only an allocation failure can end up here.
  DUET_CHECK(length >= 0, "Unicode NFC normalisation failed: {}", utf8proc_errmsg(length));
  return decode_utf8(
      std::string_view(reinterpret_cast<const char*>(mapped), static_cast<size_t>(length)));
}

bool is_letter(char32_t c) {
  const auto cat = category(c);
  return cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO;
}

bool is_number(char32_t c) {
  const auto cat = category(c);
  return cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO;
}

bool is_white_space(char32_t c) {
  return std::find(std::begin(kWhiteSpace), std::end(kWhiteSpace), c) != std::end(kWhiteSpace);
}

bool is_python_space(char32_t c) {
  // CPython: bidirectional class WS, B or S, or category Zs. That adds the information
  // separators U+001C..U+001F to White_Space.
  return is_white_space(c) || (c >= 0x1C && c <= 0x1F);
}

std::u32string python_strip(std::u32string_view text) { return trim_if(text, is_python_space); }

std::u32string python_lower(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char32_t c = text[i];
    if (c == 0x0130) {  // LATIN CAPITAL LETTER I WITH DOT ABOVE: SpecialCasing.txt
      out.push_back(0x0069);
      out.push_back(0x0307);
    } else if (c == 0x03A3) {
      out.push_back(lower_sigma(text, i));
    } else {
      out.push_back(static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))));
    }
  }
  return out;
}

}  // namespace duet::text
