#pragma once
// Small string helpers shared by the readers of text files, archive members and captions, and
// by the writers of SVG plots and the HTML run report.
#include <string>
#include <string_view>

namespace duet {

// `text` without the leading and trailing characters for which is_space(c) holds.
template <class Char, class IsSpace>
std::basic_string<Char> trim_if(std::basic_string_view<Char> text, IsSpace is_space) {
  size_t begin = 0;
  size_t end = text.size();
  while (begin < end && is_space(text[begin])) {
    ++begin;
  }
  while (end > begin && is_space(text[end - 1])) {
    --end;
  }
  return std::basic_string<Char>(text.substr(begin, end - begin));
}

// `text` without its leading and trailing ASCII whitespace (std::isspace in the "C" locale:
// space, \t, \n, \v, \f, \r). Bytes of multi-byte UTF-8 sequences are never whitespace.
std::string trim(std::string_view text);

// `text` safe inside XML or HTML text and quoted attributes: & < > " ' as entities, and the
// control characters XML 1.0 forbids (below 0x20 except tab and newline) as spaces.
std::string markup_escape(std::string_view text);

// `bytes` in standard base64 (RFC 4648 alphabet, '=' padding).
std::string base64_encode(std::string_view bytes);

}  // namespace duet
