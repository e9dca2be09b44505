// `duet data inspect` on shards written by the test: valid samples, skipped samples by reason,
// and captions that are not UTF-8 (JSON output must not fail on them).
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "common/test_util.h"
#include "data_fixtures.h"

namespace {

using duet::data::testing::pattern_jpeg;
using duet::data::testing::pattern_png;
using duet::data::testing::ShardSample;
using duet::data::testing::write_shard;
using duet::test::run_duet;
using duet::test::TempDir;

const std::string kReplacement = "\xEF\xBF\xBD";  // U+FFFD in UTF-8

// 4 valid samples (two with captions that are not UTF-8) and 4 bad ones.
std::string write_inspect_shard(const TempDir& dir) {
  const std::string jpeg = pattern_jpeg(32, 24, 2);
  write_shard(dir / "s.tar",
              {{"k0", {{".png", pattern_png(20, 16, 0)}, {".txt", "a plain caption"}}},
               {"k1", {{".png", pattern_png(20, 16, 1)}, {".txt", "caf\xE9 in Latin-1"}}},
               {"k2", {{".jpg", jpeg}, {".txt", "cut \xF0\x9F\x98 emoji, stray \xFF byte"}}},
               {"k3", {{".jpg", "not a jpeg"}, {".txt", "corrupt"}}},
               {"k4", {{".jpg", jpeg.substr(0, jpeg.size() / 2)}, {".txt", "truncated"}}},
               {"k5", {{".png", pattern_png(8, 8, 5)}}},
               {"k6", {{".txt", "no image"}}},
               {"k7", {{".png", pattern_png(12, 12, 7)}, {".txt", "ok \xC3\xA9"}}}});
  return dir / "s.tar";
}

}  // namespace

TEST_CASE("data inspect --json reports samples, skips by reason and non-UTF-8 captions") {
  TempDir dir;
  const std::string shard = write_inspect_shard(dir);
  const auto result = run_duet({"--log-level", "error", "data", "inspect", "--json", "--image-size",
                                "16", "--examples", "10", shard});
  INFO("stderr: " << result.err);
  REQUIRE(result.exit_code == 0);
  const nlohmann::json j = nlohmann::json::parse(result.out);
  CHECK(j["samples"] == 4);
  CHECK(j["skipped"] == 4);
  CHECK(j["skipped_by_reason"] ==
        nlohmann::json({{"corrupt_image", 2}, {"missing_caption", 1}, {"missing_image", 1}}));
  REQUIRE(j["examples"].size() == 4);
  CHECK(j["examples"][0]["caption"] == "a plain caption");
  CHECK(j["examples"][1]["caption"] == "caf" + kReplacement + " in Latin-1");
  const std::string cut = j["examples"][2]["caption"];
  CHECK(cut.rfind("cut ", 0) == 0);
  CHECK_THAT(cut, Catch::Contains(kReplacement + " byte"));
  CHECK(j["examples"][3]["caption"] == "ok \xC3\xA9");  // valid UTF-8 is kept as is
}

TEST_CASE("data inspect prints non-UTF-8 captions in text mode too") {
  TempDir dir;
  const std::string shard = write_inspect_shard(dir);
  const auto result = run_duet(
      {"--log-level", "error", "data", "inspect", "--image-size", "16", "--examples", "10", shard});
  INFO("stderr: " << result.err);
  REQUIRE(result.exit_code == 0);
  CHECK_THAT(result.out, Catch::Contains("samples: 4 valid"));
  CHECK_THAT(result.out, Catch::Contains("skipped: 4 (corrupt_image: 2, missing_caption: 1, "
                                         "missing_image: 1)"));
  CHECK_THAT(result.out, Catch::Contains("\"caf" + kReplacement + " in Latin-1\""));
}

TEST_CASE("data inspect: a source without valid samples and a missing path exit 1") {
  TempDir dir;
  write_shard(dir / "bad.tar", {{"z", {{".jpg", "garbage"}, {".txt", "x"}}}});
  const auto bad = run_duet({"--log-level", "off", "data", "inspect", dir / "bad.tar"});
  CHECK(bad.exit_code == 1);
  CHECK_THAT(bad.err, Catch::Contains("bad.tar") && Catch::Contains("no valid sample"));
  const auto missing = run_duet({"data", "inspect", dir / "nope.tar"});
  CHECK(missing.exit_code == 1);
  CHECK_THAT(missing.err, Catch::Contains("nope.tar"));
}
