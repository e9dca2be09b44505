// html.unescape, transcribed from CPython's Lib/html/__init__.py: every match of
//   &(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)
// is replaced, left to right and without overlap, by _replace_charref's result. The tables
// come from html_entities.cpp, generated from the same Python module.
#include "text/html_unescape.h"

#include <algorithm>
#include <cstring>

#include "text/html_entities.h"

namespace duet::text {

namespace {

constexpr char32_t kMaxCodePoint = 0x10FFFF;

bool is_ascii_digit(char32_t c) { return c >= '0' && c <= '9'; }

int hex_value(char32_t c) {
  if (c >= '0' && c <= '9') {
    return static_cast<int>(c - '0');
  }
  if (c >= 'a' && c <= 'f') {
    return static_cast<int>(c - 'a' + 10);
  }
  if (c >= 'A' && c <= 'F') {
    return static_cast<int>(c - 'A' + 10);
  }
  return -1;
}

// Characters the named-reference alternative [^\t\n\f <&#;] accepts.
bool is_name_char(char32_t c) {
  return c != '\t' && c != '\n' && c != '\f' && c != ' ' && c != '<' && c != '&' && c != '#' &&
         c != ';';
}

const HtmlEntity* find_entity(std::u32string_view name) {
  std::string ascii;
  for (char32_t c : name) {
    if (c >= 0x80) {
      return nullptr;  // every HTML5 name is ASCII
    }
    ascii.push_back(static_cast<char>(c));
  }
  const HtmlEntity* end = kHtmlEntities + kHtmlEntityCount;
  const HtmlEntity* it =
      std::lower_bound(kHtmlEntities, end, ascii, [](const HtmlEntity& e, const std::string& key) {
        return std::strcmp(e.name, key.c_str()) < 0;
      });
  return it != end && ascii == it->name ? it : nullptr;
}

void append_entity(const HtmlEntity& entity, std::u32string& out) {
  out.push_back(entity.first);
  if (entity.second != 0) {
    out.push_back(entity.second);
  }
}

// _replace_charref for a numeric reference; `number` is saturated above U+10FFFF.
void append_numeric(char32_t number, std::u32string& out) {
  const HtmlCharref* end = kHtmlInvalidCharrefs + kHtmlInvalidCharrefCount;
  const HtmlCharref* it =
      std::lower_bound(kHtmlInvalidCharrefs, end, number,
                       [](const HtmlCharref& r, char32_t n) { return r.number < n; });
  if (it != end && it->number == number) {
    out.push_back(it->replacement);
  } else if ((number >= 0xD800 && number <= 0xDFFF) || number > kMaxCodePoint) {
    out.push_back(0xFFFD);
  } else if (!std::binary_search(kHtmlInvalidCodepoints,
                                 kHtmlInvalidCodepoints + kHtmlInvalidCodepointCount, number)) {
    out.push_back(number);
  }
}

// Tries the numeric alternatives at text[at] == '#'. Returns the end of the match, or `at` when
// neither matches.
size_t match_numeric(std::u32string_view text, size_t at, std::u32string& out) {
  size_t i = at + 1;
  char32_t number = 0;
  auto accumulate = [&number](char32_t digit, char32_t base) {
    number = number > kMaxCodePoint ? number : number * base + digit;
  };
  if (i < text.size() && is_ascii_digit(text[i])) {
    for (; i < text.size() && is_ascii_digit(text[i]); ++i) {
      accumulate(text[i] - '0', 10);
    }
  } else if (i + 1 < text.size() && (text[i] == 'x' || text[i] == 'X') &&
             hex_value(text[i + 1]) >= 0) {
    for (++i; i < text.size() && hex_value(text[i]) >= 0; ++i) {
      accumulate(static_cast<char32_t>(hex_value(text[i])), 16);
    }
  } else {
    return at;
  }
  if (i < text.size() && text[i] == ';') {
    ++i;
  }
  append_numeric(number, out);
  return i;
}

// The named alternative at text[at] (the first character after '&'). Returns the end of the
// match, or `at` when it does not match.
size_t match_named(std::u32string_view text, size_t at, std::u32string& out) {
  size_t i = at;
  while (i < text.size() && i - at < 32 && is_name_char(text[i])) {
    ++i;
  }
  if (i == at) {
    return at;
  }
  if (i < text.size() && text[i] == ';') {
    ++i;
  }
  const std::u32string_view name = text.substr(at, i - at);
  if (const HtmlEntity* entity = find_entity(name)) {
    append_entity(*entity, out);
    return i;
  }
  // The longest prefix of at least two characters that is a name (those without ';' are the
  // legacy ones HTML5 accepts unterminated); the rest stays as it was.
  for (size_t x = name.size() - 1; x >= 2; --x) {
    if (const HtmlEntity* entity = find_entity(name.substr(0, x))) {
      append_entity(*entity, out);
      out.append(name.substr(x));
      return i;
    }
  }
  out.push_back('&');
  out.append(name);
  return i;
}

}  // namespace

std::u32string html_unescape(std::u32string_view text) {
  if (text.find(U'&') == std::u32string_view::npos) {
    return std::u32string(text);
  }
  std::u32string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const char32_t c = text[i];
    if (c != '&' || i + 1 >= text.size()) {
      out.push_back(c);
      ++i;
      continue;
    }
    const size_t after = i + 1;
    const size_t end =
        text[after] == '#' ? match_numeric(text, after, out) : match_named(text, after, out);
    if (end == after) {
      out.push_back('&');  // no reference here; scanning goes on with the next character
    }
    i = end;
  }
  return out;
}

}  // namespace duet::text
