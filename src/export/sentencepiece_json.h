#pragma once
// A Hugging Face `tokenizers` tokenizer.json that encodes as a SentencePiece model does, built
// from the model's serialized ModelProto, so that transformers' PreTrainedTokenizerFast gives
// duet's ids. The recipe is transformers' own for SentencePiece models
// (SpmConverter.build_tokenizer_from_spm_proto): the precompiled normalisation charsmap, then
// SentencePiece's whitespace handling (strip, collapse, escape to U+2581, dummy prefix), a
// Metaspace pre-tokenizer, the Unigram model (pieces and scores) or BPE (merges ranked by
// piece score), and a template adding duet's start and end tokens. Torch-free.
#include <cstdint>
#include <string>
#include <vector>

#include "text/tokenizer.h"

namespace duet::export_ {

// SentencePiece's ModelProto.SentencePiece.Type and TrainerSpec.ModelType, with their values.
enum class PieceType {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6
};
enum class SentencePieceModelType { kUnigram = 1, kBpe = 2, kWord = 3, kChar = 4 };

// What the ModelProto says that the tokenizer.json needs.
struct SentencePieceModel {
  struct Piece {
    std::string piece;
    float score = 0.0f;
    PieceType type = PieceType::kNormal;
  };
  std::vector<Piece> pieces;  // by id
  SentencePieceModelType model_type = SentencePieceModelType::kUnigram;
  bool byte_fallback = false;
  std::string precompiled_charsmap;  // raw bytes
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = true;
  bool escape_whitespaces = true;
};

// Loads a serialized ModelProto with libsentencepiece and reads it; a model libsentencepiece
// refuses (malformed, truncated, empty) is a runtime Error with its reason.
SentencePieceModel parse_sentencepiece_model(const std::string& serialized);

// tokenizer.json text for `model` with duet's special ids (`info`: SOT prepended when
// sot_id >= 0, EOT appended). Empty with `why_not` set when the model cannot be expressed
// (WORD/CHAR model types).
std::string sentencepiece_tokenizer_json(const SentencePieceModel& model,
                                         const text::TokenizerInfo& info, std::string& why_not);

}  // namespace duet::export_
