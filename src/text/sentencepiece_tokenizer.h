#pragma once
// SentencePiece models through Debian's libsentencepiece: loading one as a Tokenizer, and
// training one from captions so that a dataset without a CLIP vocabulary still gets a real
// tokenizer. Models duet trains reserve pad = 0, unk = 1, bos (SOT) = 2 and eos (EOT) = 3.
// Loaded models report their own ids; they must have an eos piece (the EOT), may lack bos
// (then no SOT is prepended) and pad with id 0 when they have no pad piece.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "text/tokenizer.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace duet::text {

class SentencePieceTokenizer final : public Tokenizer {
 public:
  // Loads a .model file. A missing, empty or unreadable model, or one without an eos piece,
  // throws a runtime Error naming tokenizer.path and the file.
  explicit SentencePieceTokenizer(const std::string& model_path);
  ~SentencePieceTokenizer() override;

  std::vector<int64_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int64_t>& ids) const override;
  TokenizerInfo info() const override { return info_; }

  // The serialized ModelProto (what the .model file holds): pieces, scores, normaliser spec.
  std::string serialized_model() const;

 private:
  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
  TokenizerInfo info_;
};

// The ids every model duet trains reserves.
inline constexpr int64_t kSentencePiecePadId = 0;
inline constexpr int64_t kSentencePieceUnkId = 1;
inline constexpr int64_t kSentencePieceBosId = 2;
inline constexpr int64_t kSentencePieceEosId = 3;

struct SentencePieceTrainOptions {
  std::string model_type = "unigram";  // unigram, bpe, char or word
  // Fraction of the characters in the captions the vocabulary must cover; the rarest rest map
  // to unk. 1.0 suits small alphabets; 0.9995 is SentencePiece's choice for CJK-sized ones.
  double character_coverage = 1.0;
  // SentencePiece normalisation rule. nmt_nfkc_cf also case-folds, as CLIP lower-cases.
  std::string normalization = "nmt_nfkc_cf";
  int64_t max_sentences = 0;  // train on a random sample of this many captions; 0 uses all
  int64_t threads = 0;        // 0 uses every hardware thread
};

// Trains a model on `input_file` (UTF-8, one caption per line) with exactly `vocab_size` ids
// (the four reserved ones included) and writes PREFIX.model and PREFIX.vocab, creating PREFIX's
// directory. Returns the .model path. A missing or empty input, or a vocabulary size the
// captions cannot support, throws a runtime Error saying so.
std::string train_sentencepiece(const std::string& input_file, int64_t vocab_size,
                                const std::string& model_prefix,
                                const SentencePieceTrainOptions& options = {});

// The same from captions in memory (for data pipelines that read them from CSV or shards).
std::string train_sentencepiece(const std::vector<std::string>& captions, int64_t vocab_size,
                                const std::string& model_prefix,
                                const SentencePieceTrainOptions& options = {});

}  // namespace duet::text
