// SentencePiece: train on a caption file the test writes, load it through make_tokenizer, check
// the reserved ids, round-trip texts, and the errors for bad models and bad training input.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "common/error.h"
#include "text/sentencepiece_tokenizer.h"
#include "text_test_util.h"

namespace duet::text {
namespace {

using test::TempDir;

// A model trained once per process on the caption file.
struct Trained {
  TempDir dir;
  std::string model;
  Trained() {
    std::string text;
    for (const auto& caption : test::sample_captions()) {
      text += caption + "\n";
    }
    test::write_file(dir.path("captions.txt"), text);
    model = train_sentencepiece(dir.path("captions.txt"), 64, dir.path("sp/captions"));
  }
};

const Trained& trained() {
  static const Trained t;
  return t;
}

template <class F>
Error error_of(F&& make) {
  try {
    make();
  } catch (const Error& e) {
    return e;
  }
  FAIL("no duet::Error was thrown");
  return Error(ErrorKind::kRuntime, "");
}

config::TokenizerConfig sentencepiece_config(const std::string& path) {
  config::TokenizerConfig c;
  c.type = config::TokenizerType::kSentencePiece;
  c.path = path;
  return c;
}

TEST_CASE("a trained SentencePiece model reserves pad, unk, bos and eos") {
  const std::string& model = trained().model;
  CHECK(std::filesystem::exists(model));
  CHECK(std::filesystem::exists(trained().dir.path("sp/captions.vocab")));
  const auto tokenizer = make_tokenizer(sentencepiece_config(model));
  const TokenizerInfo info = tokenizer->info();
  CHECK(info.vocab_size == 64);
  CHECK(info.pad_id == kSentencePiecePadId);
  CHECK(info.unk_id == kSentencePieceUnkId);
  CHECK(info.sot_id == kSentencePieceBosId);
  CHECK(info.eot_id == kSentencePieceEosId);
  CHECK(std::vector<int64_t>{info.pad_id, info.unk_id, info.sot_id, info.eot_id} ==
        std::vector<int64_t>{0, 1, 2, 3});
}

TEST_CASE("SentencePiece ids round-trip and tokenize adds bos, eos and padding") {
  const auto tokenizer = make_tokenizer(sentencepiece_config(trained().model));
  for (const std::string text : {"a photo of a dog.", "a sketch of the red river.", "horse"}) {
    INFO("text: '" << text << "'");
    const std::vector<int64_t> ids = tokenizer->encode(text);
    REQUIRE(!ids.empty());
    for (int64_t id : ids) {
      CHECK(id > kSentencePieceEosId);  // no special ids inside a text
      CHECK(id < 64);
    }
    CHECK(tokenizer->decode(ids) == text);
  }
  // The default normalisation case-folds, as CLIP lower-cases.
  CHECK(tokenizer->encode("A PHOTO of a Dog.") == tokenizer->encode("a photo of a dog."));
  // Characters never seen in training map to unk.
  const auto unknown = tokenizer->encode("a photo of a \xe6\x9d\xb1");
  CHECK(std::find(unknown.begin(), unknown.end(), kSentencePieceUnkId) != unknown.end());

  const std::vector<int64_t> body = tokenizer->encode("a photo of a dog.");
  std::vector<int64_t> expected = {kSentencePieceBosId};
  expected.insert(expected.end(), body.begin(), body.end());
  expected.push_back(kSentencePieceEosId);
  const auto length = static_cast<int64_t>(expected.size());
  expected.resize(static_cast<size_t>(length + 3), kSentencePiecePadId);
  CHECK(tokenizer->tokenize("a photo of a dog.", length + 3) == expected);
  const auto cut = tokenizer->tokenize("a photo of a dog.", 3);
  CHECK(cut == std::vector<int64_t>{kSentencePieceBosId, body[0], kSentencePieceEosId});
  CHECK_THROWS_AS(tokenizer->decode({64}), Error);
}

TEST_CASE("training from captions in memory matches training from the file") {
  const TempDir dir;
  const std::string model = train_sentencepiece(test::sample_captions(), 64, dir.path("memory"));
  const auto from_memory = make_tokenizer(sentencepiece_config(model));
  const auto from_file = make_tokenizer(sentencepiece_config(trained().model));
  CHECK(from_memory->info().vocab_size == 64);
  for (const auto& caption : test::sample_captions()) {
    CHECK(from_memory->encode(caption) == from_file->encode(caption));
  }
}

TEST_CASE("bad SentencePiece models are errors naming tokenizer.path") {
  const TempDir dir;
  SECTION("missing") {
    const std::string path = dir.path("missing.model");
    const Error e = error_of([&] { make_tokenizer(sentencepiece_config(path)); });
    CHECK(e.kind() == ErrorKind::kRuntime);
    CHECK_THAT(e.what(), Catch::Contains("tokenizer.path") && Catch::Contains(path) &&
                             Catch::Contains("does not exist"));
  }
  SECTION("empty") {
    const std::string path = dir.path("empty.model");
    test::write_file(path, "");
    const Error e = error_of([&] { make_tokenizer(sentencepiece_config(path)); });
    CHECK_THAT(e.what(), Catch::Contains("tokenizer.path") && Catch::Contains(path) &&
                             Catch::Contains("is empty"));
  }
  SECTION("corrupt") {
    const std::string path = dir.path("corrupt.model");
    test::write_file(path, "this is not a protobuf\n\xff\xfe\x01\x02");
    const Error e = error_of([&] { make_tokenizer(sentencepiece_config(path)); });
    CHECK_THAT(e.what(), Catch::Contains("tokenizer.path") && Catch::Contains(path) &&
                             Catch::Contains("not a valid SentencePiece model"));
  }
  SECTION("a CLIP merges file given as a SentencePiece model") {
    const Error e = error_of([&] { make_tokenizer(sentencepiece_config(test::clip_merges_gz())); });
    CHECK_THAT(e.what(), Catch::Contains("not a valid SentencePiece model"));
  }
}

TEST_CASE("training errors say what is wrong") {
  const TempDir dir;
  SECTION("missing caption file") {
    const std::string path = dir.path("none.txt");
    const Error e = error_of([&] { train_sentencepiece(path, 100, dir.path("m")); });
    CHECK(e.kind() == ErrorKind::kRuntime);
    CHECK_THAT(e.what(), Catch::Contains(path) && Catch::Contains("does not exist"));
  }
  SECTION("empty caption file") {
    const std::string path = dir.path("empty.txt");
    test::write_file(path, "");
    const Error e = error_of([&] { train_sentencepiece(path, 100, dir.path("m")); });
    CHECK_THAT(e.what(), Catch::Contains(path) && Catch::Contains("is empty"));
  }
  SECTION("a vocabulary the captions cannot fill") {
    const std::string path = dir.path("tiny.txt");
    test::write_file(path, "a photo of a dog\na photo of a cat\n");
    const Error e = error_of([&] { train_sentencepiece(path, 5000, dir.path("m")); });
    CHECK_THAT(e.what(), Catch::Contains(path) && Catch::Contains("Vocabulary size"));
    CHECK(!std::filesystem::exists(dir.path("m.model")));
  }
  SECTION("a vocabulary without room for the reserved ids") {
    const Error e =
        error_of([&] { train_sentencepiece(test::sample_captions(), 4, dir.path("m")); });
    CHECK_THAT(e.what(), Catch::Contains("too small"));
  }
}

}  // namespace
}  // namespace duet::text
