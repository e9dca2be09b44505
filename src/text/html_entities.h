#pragma once
// The tables behind Python's html.unescape, generated into html_entities.cpp by
// scripts/gen_html_entities.py from the Python standard library. Invariants: kHtmlEntities is
// sorted by name in byte order (names are ASCII, case-sensitive, with or without the trailing
// ';' exactly as Python lists them); kHtmlInvalidCharrefs is sorted by number;
// kHtmlInvalidCodepoints is sorted.
#include <cstddef>

namespace duet::text {

// One HTML5 named character reference: html.entities.html5[name] is `first`, followed by
// `second` unless it is 0 (every value is one or two code points).
struct HtmlEntity {
  const char* name;
  char32_t first;
  char32_t second;
};

// A numeric reference HTML5 maps to another code point (html._invalid_charrefs).
struct HtmlCharref {
  char32_t number;
  char32_t replacement;
};

extern const HtmlEntity kHtmlEntities[];
extern const std::size_t kHtmlEntityCount;
extern const HtmlCharref kHtmlInvalidCharrefs[];
extern const std::size_t kHtmlInvalidCharrefCount;
// Numeric references that unescape to nothing (html._invalid_codepoints).
extern const char32_t kHtmlInvalidCodepoints[];
extern const std::size_t kHtmlInvalidCodepointCount;

}  // namespace duet::text
