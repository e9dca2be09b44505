// Tokenizer::tokenize (shared by every tokenizer), the factory behind tokenizer.type, and the
// check that the text tower's vocabulary matches the tokenizer's.
#include "text/tokenizer.h"

#include "common/error.h"
#include "text/clip_bpe.h"
#include "text/sentencepiece_tokenizer.h"

namespace duet::text {

std::vector<int64_t> Tokenizer::tokenize(const std::string& text, int64_t context_length) const {
  DUET_CHECK(context_length >= 1, "context length must be at least 1, got {}", context_length);
  const TokenizerInfo ids = info();
  const std::vector<int64_t> body = encode(text);
  std::vector<int64_t> tokens;
  tokens.reserve(body.size() + 2);
  if (ids.sot_id >= 0) {
    tokens.push_back(ids.sot_id);
  }
  tokens.insert(tokens.end(), body.begin(), body.end());
  if (ids.eot_id >= 0) {
    tokens.push_back(ids.eot_id);
  }
  const auto length = static_cast<size_t>(context_length);
  if (tokens.size() > length) {
    tokens.resize(length);
    if (ids.eot_id >= 0) {
      tokens.back() = ids.eot_id;  // the text tower pools at EOT, so it must survive truncation
    }
  }
  tokens.resize(length, ids.pad_id);
  return tokens;
}

std::unique_ptr<Tokenizer> make_tokenizer(const config::TokenizerConfig& config) {
  if (config.path.empty()) {
    fail(ErrorKind::kConfig,
         "tokenizer.path is empty; set it to CLIP's merges file (bpe_simple_vocab_16e6.txt.gz, "
         "from OpenCLIP or OpenAI CLIP) or to a SentencePiece .model (`duet tokenizer train` "
         "makes one from captions)");
  }
  switch (config.type) {
    case config::TokenizerType::kClipBpe:
      return std::make_unique<ClipBpeTokenizer>(config.path);
    case config::TokenizerType::kSentencePiece:
      break;
  }
  return std::make_unique<SentencePieceTokenizer>(config.path);
}

void check_vocab(const TokenizerInfo& info, const config::TextConfig& text) {
  if (info.vocab_size != text.vocab_size) {
    fail(ErrorKind::kConfig,
         "model.text.vocab_size is {} but the tokenizer has {} ids; set model.text.vocab_size: "
         "{} so the token embedding has one row per id",
         text.vocab_size, info.vocab_size, info.vocab_size);
  }
}

}  // namespace duet::text
