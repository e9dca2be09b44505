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

#include "text/tokenizer.h"

namespace duet::export_ {

// What the ModelProto says that the tokenizer.json needs.
struct SentencePieceModel {
  struct Piece {
    std::string piece;
    float score = 0.0f;
    int type = 1;  // NORMAL 1, UNKNOWN 2, CONTROL 3, USER_DEFINED 4, UNUSED 5, BYTE 6
  };
  std::vector<Piece> pieces;
  int model_type = 1;  // UNIGRAM 1, BPE 2, WORD 3, CHAR 4
  bool byte_fallback = false;
  std::string precompiled_charsmap;  // raw bytes
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = true;
  bool escape_whitespaces = true;
};

// Parses the protobuf wire format of a ModelProto; a malformed one is a runtime Error.
SentencePieceModel parse_sentencepiece_model(const std::string& serialized);

// tokenizer.json text for `model` with duet's special ids (`info`: SOT prepended when
// sot_id >= 0, EOT appended). Empty with `why_not` set when the model cannot be expressed
// (WORD/CHAR model types).
std::string sentencepiece_tokenizer_json(const SentencePieceModel& model,
                                         const text::TokenizerInfo& info, std::string& why_not);

}  // namespace duet::export_
