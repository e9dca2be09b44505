// `duet tokenize` and `duet tokenizer train|info`, run as the real binary: stdout, stderr and
// exit codes (0 success, 1 runtime failure such as a missing file, 2 bad usage or config).
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "text_test_util.h"

namespace duet::text {
namespace {

using test::join_ids;
using test::run_duet;
using test::TempDir;

const test::Golden& golden(const std::string& text) {
  for (const auto& g : test::golden_cases()) {
    if (g.text == text) {
      return g;
    }
  }
  FAIL("no golden case for '" << text << "'");
  return test::golden_cases().front();
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    out.push_back(line);
  }
  return out;
}

TEST_CASE("duet tokenize prints the golden ids, one line per text", "[cli]") {
  const auto& dog = golden("it's a dog's life, isn't it?");
  const auto& sneaker = golden("A PHOTO OF A SNEAKER");
  const auto result = run_duet({"tokenize", "--tokenizer", "clip-bpe", "--vocab",
                                test::clip_merges_gz(), dog.text, sneaker.text});
  INFO(result.err);
  REQUIRE(result.exit_code == 0);
  CHECK(lines(result.out) ==
        std::vector<std::string>{join_ids(dog.tokens77), join_ids(sneaker.tokens77)});
}

TEST_CASE("duet tokenize --json, --raw and --context", "[cli]") {
  const auto& g = golden("a photo of a sneaker.");
  auto result = run_duet({"tokenize", "--vocab", test::clip_merges_gz(), "--json", g.text});
  REQUIRE(result.exit_code == 0);
  CHECK(nlohmann::json::parse(result.out).get<std::vector<int64_t>>() == g.tokens77);

  result = run_duet({"tokenize", "--vocab", test::clip_merges_gz(), "--raw", g.text});
  REQUIRE(result.exit_code == 0);
  CHECK(result.out == join_ids(g.bpe) + "\n");

  result = run_duet({"tokenize", "--vocab", test::clip_merges_gz(), "--context", "4", g.text});
  REQUIRE(result.exit_code == 0);
  CHECK(result.out == join_ids({49406, g.bpe[0], g.bpe[1], 49407}) + "\n");
}

TEST_CASE("duet tokenize reads texts from stdin for '-', in order", "[cli]") {
  const auto& a = golden("a photo of a cat.");
  const auto& b = golden("naïve café résumé");
  const auto& c = golden("The quick brown fox jumps over the lazy dog.");
  const auto result =
      run_duet({"tokenize", "--vocab", test::clip_merges_plain(), "--json", a.text, "-", c.text},
               b.text + "\r\n" + a.text + "\n");
  INFO(result.err);
  REQUIRE(result.exit_code == 0);
  const auto out = lines(result.out);
  REQUIRE(out.size() == 4);
  const std::vector<const test::Golden*> expected = {&a, &b, &a, &c};
  for (size_t i = 0; i < out.size(); ++i) {
    CHECK(nlohmann::json::parse(out[i]).get<std::vector<int64_t>>() == expected[i]->tokens77);
  }
}

TEST_CASE("duet tokenize -c takes the tokenizer and context length from the config", "[cli]") {
  const TempDir dir;
  const std::string config = dir.path("run.yaml");
  test::write_file(config, "tokenizer:\n  type: clip_bpe\n  path: " + test::clip_merges_gz() +
                               "\nmodel:\n  text:\n    context_length: 6\n");
  const auto& g = golden("a photo of a bird.");
  auto result = run_duet({"tokenize", "-c", config, g.text});
  INFO(result.err);
  REQUIRE(result.exit_code == 0);
  CHECK(result.out == join_ids({49406, g.bpe[0], g.bpe[1], g.bpe[2], g.bpe[3], 49407}) + "\n");

  result = run_duet({"tokenize", "-c", config, "--set", "model.text.context_length=77", g.text});
  REQUIRE(result.exit_code == 0);
  CHECK(result.out == join_ids(g.tokens77) + "\n");

  // tokenizer info -c checks model.text.vocab_size (default 49408) against the tokenizer.
  result = run_duet({"tokenizer", "info", "-c", config});
  CHECK(result.exit_code == 0);
  CHECK_THAT(result.out, Catch::Contains("vocab_size 49408") && Catch::Contains("eot_id 49407"));
  result = run_duet({"tokenizer", "info", "-c", config, "--set", "model.text.vocab_size=1000"});
  CHECK(result.exit_code == 2);
  CHECK_THAT(result.err,
             Catch::Contains("model.text.vocab_size is 1000") && Catch::Contains("49408"));
}

TEST_CASE("duet tokenize exit codes: 1 for a missing file, 2 for bad usage", "[cli]") {
  const TempDir dir;
  auto result = run_duet({"tokenize", "--vocab", dir.path("missing.txt.gz"), "a dog"});
  CHECK(result.exit_code == 1);
  CHECK(result.out.empty());
  CHECK_THAT(result.err,
             Catch::Contains("tokenizer.path") && Catch::Contains(dir.path("missing.txt.gz")));

  result = run_duet({"tokenize", "a dog"});  // no tokenizer given
  CHECK(result.exit_code == 2);
  CHECK_THAT(result.err, Catch::Contains("--vocab"));

  result = run_duet(
      {"tokenize", "--tokenizer", "wordpiece", "--vocab", test::clip_merges_gz(), "a dog"});
  CHECK(result.exit_code == 2);

  result = run_duet({"tokenize", "--vocab", test::clip_merges_gz()});  // no text
  CHECK(result.exit_code == 2);

  result = run_duet({"tokenize", "--vocab", test::clip_merges_gz(), "--context", "0", "a dog"});
  CHECK(result.exit_code == 2);
}

TEST_CASE("duet tokenizer train writes a SentencePiece model that duet tokenize loads", "[cli]") {
  const TempDir dir;
  std::string captions;
  for (const auto& caption : test::sample_captions()) {
    captions += caption + "\n";
  }
  test::write_file(dir.path("captions.txt"), captions);
  const std::string prefix = dir.path("out/sp");
  auto result = run_duet({"tokenizer", "train", "--input", dir.path("captions.txt"), "--vocab-size",
                          "64", "--out", prefix});
  INFO(result.err);
  REQUIRE(result.exit_code == 0);
  CHECK(result.out == prefix + ".model\n");
  CHECK(std::filesystem::exists(prefix + ".model"));

  result = run_duet({"tokenize", "--tokenizer", "sentencepiece", "--vocab", prefix + ".model",
                     "--context", "12", "--json", "a photo of a dog."});
  REQUIRE(result.exit_code == 0);
  const auto ids = nlohmann::json::parse(result.out).get<std::vector<int64_t>>();
  REQUIRE(ids.size() == 12);
  CHECK(ids.front() == 2);  // bos
  const auto eos = std::find(ids.begin(), ids.end(), 3);
  REQUIRE(eos != ids.end());
  CHECK(std::all_of(eos + 1, ids.end(), [](int64_t id) { return id == 0; }));
  CHECK(std::all_of(ids.begin() + 1, eos, [](int64_t id) { return id > 3 && id < 64; }));

  result =
      run_duet({"tokenizer", "info", "--tokenizer", "sentencepiece", "--vocab", prefix + ".model"});
  CHECK(result.exit_code == 0);
  CHECK_THAT(result.out, Catch::Contains("vocab_size 64") && Catch::Contains("pad_id 0") &&
                             Catch::Contains("unk_id 1") && Catch::Contains("sot_id 2") &&
                             Catch::Contains("eot_id 3"));

  result = run_duet({"tokenizer", "train", "--input", dir.path("missing.txt"), "--vocab-size",
                     "100", "--out", prefix});
  CHECK(result.exit_code == 1);
  CHECK_THAT(result.err, Catch::Contains(dir.path("missing.txt")));

  result = run_duet({"tokenizer", "train", "--input", dir.path("captions.txt"), "--out", prefix});
  CHECK(result.exit_code == 2);  // --vocab-size is required
}

}  // namespace
}  // namespace duet::text
