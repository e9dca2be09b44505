// End to end: `duet data fashion-mnist` on Debian's real IDX files, read back by the loader
// (60,000 + 10,000 samples) and by `duet data inspect --json`.
// LibTorch before Catch2: c10 defines a CHECK macro that Catch2's must replace.
#include <torch/torch.h>

#include <fmt/format.h>
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "data/loader.h"
#include "data_fixtures.h"

using namespace duet::data;
using namespace duet::data::testing;

namespace {

std::string run(const std::string& command) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[4096];
  while (size_t n = fread(buffer, 1, sizeof(buffer), pipe)) {
    out.append(buffer, n);
  }
  const int status = pclose(pipe);
  INFO(command << "\n" << out);
  REQUIRE(status == 0);
  return out;
}

int64_t count(const std::string& pattern, bool labels) {
  duet::config::DataConfig c;
  c.workers = 2;
  LoaderOptions lo;
  lo.sources = {pattern};
  lo.mode = LoaderMode::kEval;
  lo.batch_size = 1000;
  lo.image_size = 28;  // native size: measures reading and decoding, not a large resize
  lo.require_labels = labels;
  Loader loader(c, lo);
  int64_t n = 0;
  while (auto b = loader.next()) {
    n += b->size();
    if (labels) {
      CHECK(b->labels.min().item<int64_t>() >= 0);
      CHECK(b->labels.max().item<int64_t>() <= 9);
    }
  }
  CHECK(loader.stats().skipped == 0);
  return n;
}

}  // namespace

TEST_CASE("e2e: duet data fashion-mnist output reads back as 60,000 + 10,000 samples") {
  const std::string idx = "/usr/share/datasets/fashion-mnist";
  if (!std::filesystem::exists(idx + "/train-images-idx3-ubyte.gz")) {
    FAIL("Debian's dataset-fashion-mnist is not installed (scripts/setup.sh installs it)");
  }
  TempDir dir("fm_e2e");
  const std::string out = dir.file("fm");
  run(fmt::format("'{}' data fashion-mnist --out '{}' 2>&1", DUET_BINARY, out));
  CHECK(count(out + "/train/{000000..000011}.tar", false) == 60000);
  CHECK(count(out + "/test/{0..1}.tar", true) == 10000);  // CLIP_benchmark shard names

  const auto j = nlohmann::json::parse(run(fmt::format(
      "'{}' --log-level warn data inspect --json --image-size 28 '{}/test'", DUET_BINARY, out)));
  CHECK(j["samples"] == 10000);
  CHECK(j["skipped"] == 0);
  CHECK(j["classes"].size() == 10);
  CHECK(j["examples"][0]["caption"].get<std::string>().find("a ") != std::string::npos);
}
