#pragma once
// Python's html.unescape (3.x): named references from the HTML5 table (with and without ';',
// and the longest-prefix rule for names without one), decimal and hexadecimal numeric
// references with HTML5's replacements for invalid numbers. One pass, like one Python call.
#include <string>
#include <string_view>

namespace duet::text {

std::u32string html_unescape(std::u32string_view text);

}  // namespace duet::text
