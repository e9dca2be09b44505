#pragma once
// The tokenizer interface the data loader, the text tower and the CLI share. Implementations:
// CLIP's byte-level BPE (clip_bpe.h) and SentencePiece (sentencepiece_tokenizer.h).
// Torch-free: ids are plain int64 vectors; the loader packs them into tensors. Every method is
// const and safe to call from several threads at once.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"

namespace duet::text {

// What the text tower needs to know about the tokenizer feeding it.
struct TokenizerInfo {
  int64_t vocab_size = 0;  // ids are in [0, vocab_size)
  int64_t sot_id = -1;     // start-of-text id, or -1 when the tokenizer does not prepend one
  int64_t eot_id = -1;     // end-of-text id (the CLIP text tower pools at its first occurrence)
  int64_t pad_id = 0;      // id filling positions after EOT
  int64_t unk_id = -1;     // id of unknown pieces, or -1 when every text is representable
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Ids of the text without start/end tokens or padding.
  virtual std::vector<int64_t> encode(const std::string& text) const = 0;

  // Text of the ids (inverse of encode up to the tokenizer's normalisation). An id outside
  // [0, vocab_size) throws a runtime Error.
  virtual std::string decode(const std::vector<int64_t>& ids) const = 0;

  virtual TokenizerInfo info() const = 0;

  // The model input: [SOT] + ids + [EOT], truncated to `context_length` keeping EOT last,
  // padded with pad_id to exactly `context_length` (>= 1).
  std::vector<int64_t> tokenize(const std::string& text, int64_t context_length) const;
};

// Builds the configured tokenizer. An empty tokenizer.path is a config Error; a missing or
// corrupt vocabulary/model file is a runtime Error naming tokenizer.path and the file.
std::unique_ptr<Tokenizer> make_tokenizer(const config::TokenizerConfig& config);

// Throws a config Error unless model.text.vocab_size equals the tokenizer's vocabulary size, so
// that the token embedding has exactly one row per id.
void check_vocab(const TokenizerInfo& info, const config::TextConfig& text);

}  // namespace duet::text
