#pragma once
// The Python `str` semantics CLIP's reference tokenizer relies on, on code points: UTF-8
// decoding with errors="replace", NFC, str.isspace / str.strip, str.lower (with the
// unconditional SpecialCasing mapping and the Final_Sigma rule), and the `\s`, `\p{L}`, `\p{N}`
// classes of the `regex` module. Unicode data comes from utf8proc.
// Invariant: every std::u32string these functions return holds Unicode scalar values only
// (no surrogates, nothing above U+10FFFF).
#include <string>
#include <string_view>

namespace duet::text {

// UTF-8 to code points. Each maximal ill-formed subsequence becomes one U+FFFD, as Python's
// bytes.decode("utf-8", errors="replace") does.
std::u32string decode_utf8(std::string_view bytes);

// Code points to UTF-8; `text` must hold scalar values only.
std::string encode_utf8(std::u32string_view text);
void append_utf8(char32_t c, std::string& out);

// Canonical composition (Unicode NFC).
std::u32string nfc(std::u32string_view text);

bool is_letter(char32_t c);        // general category L*: `\p{L}`
bool is_number(char32_t c);        // general category N*: `\p{N}`
bool is_white_space(char32_t c);   // the White_Space property: `\s` of the regex module
bool is_python_space(char32_t c);  // str.isspace(): White_Space plus U+001C..U+001F

// str.strip(): drops leading and trailing characters for which str.isspace() holds.
std::u32string python_strip(std::u32string_view text);

// str.lower(): simple lowercase mappings, U+0130 to "i\u0307", and U+03A3 to final sigma
// (U+03C2) after a cased letter and not before one, skipping case-ignorable characters.
std::u32string python_lower(std::u32string_view text);

}  // namespace duet::text
