// Brace expansion of shard patterns.
#include <catch2/catch.hpp>

#include "common/error.h"
#include "data/brace.h"

using duet::data::expand_braces;
using Strings = std::vector<std::string>;

TEST_CASE("brace: zero-padded numeric ranges keep their width") {
  const Strings out = expand_braces("shards/{00000..00127}.tar");
  REQUIRE(out.size() == 128);
  CHECK(out.front() == "shards/00000.tar");
  CHECK(out[42] == "shards/00042.tar");
  CHECK(out.back() == "shards/00127.tar");
}

TEST_CASE("brace: plain ranges, lists, products and literals") {
  CHECK(expand_braces("a{8..11}") == Strings{"a8", "a9", "a10", "a11"});
  CHECK(expand_braces("{x,y}/{0..1}.tar") == Strings{"x/0.tar", "x/1.tar", "y/0.tar", "y/1.tar"});
  CHECK(expand_braces("{a,b{1..2}}") == Strings{"a", "b1", "b2"});
  CHECK(expand_braces("plain.tar") == Strings{"plain.tar"});
  CHECK(expand_braces("{7..7}") == Strings{"7"});
}

TEST_CASE("brace: malformed patterns are errors naming the pattern") {
  for (const char* bad : {"s/{0..3.tar", "s/0..3}.tar", "s/{3..1}.tar", "s/{a..c}.tar", "s/{}.tar",
                          "s/{0..99999999999}.tar", "s/{single}.tar"}) {
    INFO(bad);
    try {
      expand_braces(bad);
      FAIL("no error");
    } catch (const duet::Error& e) {
      CHECK(std::string(e.what()).find(bad) != std::string::npos);
    }
  }
}
