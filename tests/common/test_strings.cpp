// trim(): ASCII whitespace off both ends, nothing else touched; trim_if with any predicate and
// character type.
#include <catch2/catch.hpp>

#include "common/strings.h"

namespace duet {
namespace {

TEST_CASE("trim drops leading and trailing whitespace only") {
  CHECK(trim("  a red dog \r\n") == "a red dog");
  CHECK(trim("\t\v\fcat\t") == "cat");
  CHECK(trim("a  b") == "a  b");  // inner runs stay
  CHECK(trim("") == "");
  CHECK(trim(" \t\r\n ") == "");
  CHECK(trim("x") == "x");
  // UTF-8 bytes >= 0x80 are not whitespace: U+00A0 (NBSP, C2 A0) and U+3000 stay.
  CHECK(trim("\xC2\xA0"
             "cat\xE3\x80\x80") ==
        "\xC2\xA0"
        "cat\xE3\x80\x80");
}

TEST_CASE("trim_if drops what its predicate names, for any character type") {
  auto is_x = [](char32_t c) { return c == U'x'; };
  CHECK(trim_if(std::u32string_view(U"xxaxbxx"), is_x) == U"axb");
  CHECK(trim_if(std::u32string_view(U"xxx"), is_x).empty());
  CHECK(trim_if(std::string_view("--a-"), [](char c) { return c == '-'; }) == "a");
}

}  // namespace
}  // namespace duet

TEST_CASE("base64_encode gives RFC 4648's test vectors") {
  CHECK(duet::base64_encode("") == "");
  CHECK(duet::base64_encode("f") == "Zg==");
  CHECK(duet::base64_encode("fo") == "Zm8=");
  CHECK(duet::base64_encode("foo") == "Zm9v");
  CHECK(duet::base64_encode("foob") == "Zm9vYg==");
  CHECK(duet::base64_encode("fooba") == "Zm9vYmE=");
  CHECK(duet::base64_encode("foobar") == "Zm9vYmFy");
  CHECK(duet::base64_encode(std::string("\xff\x00\xfe", 3)) == "/wD+");
}

TEST_CASE("markup_escape makes text safe in XML and HTML text and attributes") {
  CHECK(duet::markup_escape("a < b && c > \"d\" 'e'") ==
        "a &lt; b &amp;&amp; c &gt; &quot;d&quot; &#39;e&#39;");
  CHECK(duet::markup_escape("plain — ünïcode") == "plain — ünïcode");
  CHECK(duet::markup_escape("") == "");
  CHECK(duet::markup_escape("a\r\x01" "b\tc\nd") == "a  b\tc\nd");
}
