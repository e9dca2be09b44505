#pragma once
// CLIP's byte-level BPE tokenizer, with the ids of OpenAI's simple_tokenizer.py. A text is
// cleaned as the reference does (ftfy's NFC, html.unescape twice, whitespace collapsed and
// stripped, str.lower), split by the reference's pre-tokenising regex, mapped to byte symbols
// (bytes_to_unicode) and merged by rank, each word ending in a `</w>` symbol.
// Vocabulary: 256 byte symbols, the same with `</w>`, the first 48,894 merges of the merges
// file, then <|startoftext|> (49406) and <|endoftext|> (49407).
// encode() is const and keeps no cache, so one instance serves many threads.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "text/tokenizer.h"

namespace duet::text {

class ClipBpeTokenizer final : public Tokenizer {
 public:
  static constexpr int64_t kMergeCount = 48894;  // OpenAI: merges[1 : 49152 - 256 - 2 + 1]
  static constexpr int64_t kVocabSize = 2 * 256 + kMergeCount + 2;
  static constexpr int64_t kSotId = kVocabSize - 2;
  static constexpr int64_t kEotId = kVocabSize - 1;

  // Reads a merges file such as bpe_simple_vocab_16e6.txt, plain or gzip-compressed (told
  // apart by content): a header line, then one merge per line, two symbols separated by a
  // space. Lines past the first 48,894 merges are ignored, as OpenAI does. A missing, empty,
  // undecompressable or malformed file throws a runtime Error naming tokenizer.path.
  explicit ClipBpeTokenizer(const std::string& merges_path);

  std::vector<int64_t> encode(const std::string& text) const override;
  // OpenAI's decode: symbols back to bytes, UTF-8 with errors="replace", `</w>` to a space.
  std::string decode(const std::vector<int64_t>& ids) const override;
  TokenizerInfo info() const override;

  // The vocabulary as symbol strings, id order (byte symbols as bytes_to_unicode writes them,
  // `</w>` forms, merges, the two special tokens): Hugging Face's vocab.json is this list.
  const std::vector<std::string>& symbols() const { return symbols_; }
  // The merges used, in rank order (Hugging Face's merges.txt after its header line).
  const std::vector<std::pair<std::string, std::string>>& merges() const { return merge_symbols_; }

 private:
  struct Merge {
    int32_t rank;
    int32_t merged;  // id of the merged symbol
  };

  // Appends the ids of one pre-token, given as UTF-8 bytes.
  void bpe(const std::string& piece, std::vector<int64_t>& ids) const;

  std::array<int32_t, 256> byte_ids_{};  // byte -> id of its symbol; its `</w>` form is below
  std::array<int32_t, 256> byte_end_ids_{};
  std::unordered_map<uint64_t, Merge> merges_;  // (left id << 32 | right id) -> merge
  std::vector<std::string> id_bytes_;           // id -> the bytes it stands for (`</w>` kept)
  std::vector<std::string> symbols_;            // id -> its symbol string
  std::vector<std::pair<std::string, std::string>> merge_symbols_;
  int64_t sot_id_ = kSotId;
  int64_t eot_id_ = kEotId;
};

// The text OpenAI's tokenizer splits into words: Unicode NFC, html.unescape twice, strip,
// runs of whitespace to one space, strip, str.lower. Invalid UTF-8 becomes U+FFFD.
std::u32string clip_clean_text(std::string_view text);

// Splits cleaned text as the reference's regex (`regex` module, IGNORECASE) does:
//   <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
// Characters no alternative matches (whitespace) separate pieces and are dropped.
std::vector<std::u32string> clip_pre_tokenize(std::u32string_view cleaned);

}  // namespace duet::text
