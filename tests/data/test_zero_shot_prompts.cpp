// Class names and prompt templates for zero-shot classification.
#include <catch2/catch.hpp>

#include "data/zero_shot_prompts.h"
#include "data_fixtures.h"

using namespace duet::data;
using namespace duet::data::testing;

TEST_CASE("zero-shot prompts: files are read, comments and blanks skipped, templates filled") {
  TempDir dir("zs");
  write_file(dir.file("c.txt"), "# classes\ncat\n\n  red dog \r\n");
  write_file(dir.file("t.txt"), "a photo of a {}.\n{} and {}\n");
  const ZeroShotPrompts p = read_zero_shot_prompts(dir.file("c.txt"), dir.file("t.txt"));
  CHECK(p.classnames == std::vector<std::string>{"cat", "red dog"});
  const auto prompts = p.prompts();
  REQUIRE(prompts.size() == 2);
  CHECK(prompts[1][0] == "a photo of a red dog.");
  CHECK(prompts[0][1] == "cat and cat");
}

TEST_CASE("zero-shot prompts: bad files are errors naming file and line") {
  TempDir dir("zs2");
  write_file(dir.file("c.txt"), "cat\n");
  write_file(dir.file("t.txt"), "a photo of a {}.\nno placeholder\n");
  write_file(dir.file("empty.txt"), "# nothing\n\n");
  CHECK_THROWS_WITH(read_zero_shot_prompts(dir.file("c.txt"), dir.file("t.txt")),
                    Catch::Contains("t.txt:2"));
  CHECK_THROWS_WITH(read_zero_shot_prompts(dir.file("empty.txt"), dir.file("t.txt")),
                    Catch::Contains("no entries"));
  CHECK_THROWS_WITH(read_zero_shot_prompts(dir.file("none.txt"), dir.file("t.txt")),
                    Catch::Contains("none.txt"));
}
