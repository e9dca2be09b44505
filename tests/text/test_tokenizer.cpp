// The tokenizer interface's shared parts: tokenize() on a stub tokenizer (with and without a
// start token), make_tokenizer's config errors, and check_vocab.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "common/error.h"
#include "text/tokenizer.h"
#include "text_test_util.h"

namespace duet::text {
namespace {

// One id per character (its byte value + 10); specials as given.
class ByteTokenizer : public Tokenizer {
 public:
  explicit ByteTokenizer(TokenizerInfo info) : info_(info) {}
  std::vector<int64_t> encode(const std::string& text) const override {
    std::vector<int64_t> ids;
    for (unsigned char c : text) {
      ids.push_back(c + 10);
    }
    return ids;
  }
  std::string decode(const std::vector<int64_t>& ids) const override {
    std::string text;
    for (int64_t id : ids) {
      text.push_back(static_cast<char>(id - 10));
    }
    return text;
  }
  TokenizerInfo info() const override { return info_; }

 private:
  TokenizerInfo info_;
};

TEST_CASE("tokenize frames, truncates keeping the end token, and pads") {
  TokenizerInfo info;
  info.vocab_size = 266;
  info.sot_id = 1;
  info.eot_id = 2;
  info.pad_id = 7;
  const ByteTokenizer with_sot(info);
  CHECK(with_sot.tokenize("ab", 6) == std::vector<int64_t>{1, 107, 108, 2, 7, 7});
  CHECK(with_sot.tokenize("ab", 4) == std::vector<int64_t>{1, 107, 108, 2});
  CHECK(with_sot.tokenize("abc", 4) == std::vector<int64_t>{1, 107, 108, 2});
  CHECK(with_sot.tokenize("", 2) == std::vector<int64_t>{1, 2});

  info.sot_id = -1;  // e.g. a SentencePiece model without bos
  const ByteTokenizer without_sot(info);
  CHECK(without_sot.tokenize("ab", 5) == std::vector<int64_t>{107, 108, 2, 7, 7});
  CHECK(without_sot.tokenize("abc", 3) == std::vector<int64_t>{107, 108, 2});
  CHECK_THROWS_AS(without_sot.tokenize("abc", 0), Error);
}

TEST_CASE("make_tokenizer needs a path and builds the configured type") {
  config::TokenizerConfig config;
  config.type = config::TokenizerType::kClipBpe;
  try {
    make_tokenizer(config);
    FAIL("an empty tokenizer.path was accepted");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::kConfig);
    CHECK_THAT(e.what(), Catch::Contains("tokenizer.path is empty"));
  }
  config.path = test::clip_merges_gz();
  CHECK(make_tokenizer(config)->info().vocab_size == 49408);
}

TEST_CASE("check_vocab demands model.text.vocab_size equal the tokenizer's vocabulary") {
  TokenizerInfo info;
  info.vocab_size = 49408;
  config::TextConfig text;
  text.vocab_size = 49408;
  CHECK_NOTHROW(check_vocab(info, text));
  text.vocab_size = 32000;
  try {
    check_vocab(info, text);
    FAIL("a mismatched vocabulary was accepted");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::kConfig);
    CHECK(e.exit_code() == 2);
    CHECK_THAT(e.what(), Catch::Contains("model.text.vocab_size") && Catch::Contains("32000") &&
                             Catch::Contains("49408"));
  }
  text.vocab_size = 49409;  // a larger embedding is still a mismatch
  CHECK_THROWS_AS(check_vocab(info, text), Error);
}

}  // namespace
}  // namespace duet::text
