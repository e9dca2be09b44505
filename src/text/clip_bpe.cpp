// CLIP BPE (see clip_bpe.h), transcribed from OpenAI CLIP's simple_tokenizer.py. Symbols are
// handled as ids: a merge applies to a pair of ids, and every symbol string maps to the id
// Python's `encoder` dict gives it (the last one when a string repeats), so merging ids is
// merging strings.
#include "text/clip_bpe.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include <zlib.h>

#include "common/error.h"
#include "text/html_unescape.h"
#include "text/unicode.h"

namespace duet::text {

namespace {

constexpr std::string_view kWordEnd = "</w>";
constexpr std::string_view kSotText = "<|startoftext|>";
constexpr std::string_view kEotText = "<|endoftext|>";

// bytes_to_unicode(): printable Latin-1 bytes stand for themselves, the other 68 bytes for
// U+0100.. in byte order. Index i of the result is the byte whose symbol has id i.
std::array<unsigned char, 256> symbol_order(std::array<char32_t, 256>& symbol_of_byte) {
  std::array<unsigned char, 256> order{};
  size_t next = 0;
  auto printable = [](int b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
  };
  for (int b = 0; b < 256; ++b) {
    if (printable(b)) {
      order[next++] = static_cast<unsigned char>(b);
      symbol_of_byte[b] = static_cast<char32_t>(b);
    }
  }
  char32_t extra = 256;
  for (int b = 0; b < 256; ++b) {
    if (!printable(b)) {
      order[next++] = static_cast<unsigned char>(b);
      symbol_of_byte[b] = extra++;
    }
  }
  return order;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    fail("tokenizer.path: cannot open the CLIP BPE merges file '{}': {}", path,
         std::strerror(errno));
  }
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (in.bad()) {
    fail("tokenizer.path: cannot read the CLIP BPE merges file '{}'", path);
  }
  return bytes.str();
}

bool is_gzip(const std::string& bytes) {
  return bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1F &&
         static_cast<unsigned char>(bytes[1]) == 0x8B;
}

// Decompresses every gzip member of `bytes`, as Python's gzip.open(...).read() does.
std::string gunzip(const std::string& bytes, const std::string& path) {
  z_stream stream{};
  if (inflateInit2(&stream, 16 + MAX_WBITS) != Z_OK) {
    fail("tokenizer.path: cannot start zlib to read '{}'", path);
  }
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  stream.avail_in = static_cast<uInt>(bytes.size());
  std::string out;
  char buffer[1 << 16];
  int status = Z_OK;
  std::string problem;
  while (problem.empty()) {
    stream.next_out = reinterpret_cast<Bytef*>(buffer);
    stream.avail_out = sizeof(buffer);
    status = inflate(&stream, Z_NO_FLUSH);
    out.append(buffer, sizeof(buffer) - stream.avail_out);
    if (status == Z_STREAM_END) {
      if (stream.avail_in == 0) {
        break;
      }
      if (stream.avail_in < 2 || stream.next_in[0] != 0x1F || stream.next_in[1] != 0x8B) {
        problem = "data after the end of the gzip stream";
      } else {
        inflateReset(&stream);  // another member follows
      }
    } else if (status == Z_BUF_ERROR && stream.avail_in == 0) {
      problem = "the gzip stream is truncated";
    } else if (status != Z_OK) {
      problem = stream.msg != nullptr ? stream.msg : "zlib error " + std::to_string(status);
    }
  }
  inflateEnd(&stream);
  if (!problem.empty()) {
    fail(
        "tokenizer.path: '{}' is gzip-compressed but does not decompress ({}); expected "
        "CLIP's bpe_simple_vocab_16e6.txt.gz",
        path, problem);
  }
  return out;
}

// Python's str.split() for the ASCII whitespace a merges line can hold.
std::vector<std::string_view> split_fields(std::string_view line) {
  std::vector<std::string_view> fields;
  size_t i = 0;
  auto space = [](char c) { return c == ' ' || (c >= '\t' && c <= '\r'); };
  while (i < line.size()) {
    while (i < line.size() && space(line[i])) {
      ++i;
    }
    size_t end = i;
    while (end < line.size() && !space(line[end])) {
      ++end;
    }
    if (end > i) {
      fields.push_back(line.substr(i, end - i));
    }
    i = end;
  }
  return fields;
}

std::string shorten(std::string_view text) {
  constexpr size_t kMax = 60;
  return text.size() <= kMax ? std::string(text) : std::string(text.substr(0, kMax)) + "...";
}

// OpenAI's merges = text.split('\n')[1 : 48894 + 1], each line split into its two symbols. The
// views point into `text`.
std::vector<std::pair<std::string_view, std::string_view>> parse_merges(std::string_view text,
                                                                        const std::string& path) {
  std::vector<std::pair<std::string_view, std::string_view>> merges;
  merges.reserve(ClipBpeTokenizer::kMergeCount);
  size_t line_start = text.find('\n');
  int64_t line_number = 1;
  while (line_start != std::string_view::npos &&
         static_cast<int64_t>(merges.size()) < ClipBpeTokenizer::kMergeCount) {
    ++line_start;
    ++line_number;
    const size_t line_end = text.find('\n', line_start);
    const std::string_view line = text.substr(
        line_start, line_end == std::string_view::npos ? line_end : line_end - line_start);
    line_start = line_end;
    if (line_end == std::string_view::npos && line.empty()) {
      break;  // the newline ending the last line
    }
    const auto fields = split_fields(line);
    if (fields.size() != 2) {
      fail(
          "tokenizer.path: line {} of the CLIP BPE merges file '{}' is '{}'; expected two "
          "symbols separated by a space",
          line_number, path, shorten(line));
    }
    merges.emplace_back(fields[0], fields[1]);
  }
  if (static_cast<int64_t>(merges.size()) < ClipBpeTokenizer::kMergeCount) {
    fail(
        "tokenizer.path: the CLIP BPE merges file '{}' has {} merges after its header line; "
        "CLIP's vocabulary needs the first {} (a truncated or different file?)",
        path, merges.size(), ClipBpeTokenizer::kMergeCount);
  }
  return merges;
}

uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

// Matches literal `ascii` (lower-case) at text[i] as the regex module's IGNORECASE does: an
// ASCII letter also matches its upper case, 's' also U+017F LONG S and 'k' U+212A KELVIN SIGN.
bool literal_at(std::u32string_view text, size_t i, std::string_view ascii) {
  if (text.size() - i < ascii.size()) {
    return false;
  }
  for (size_t k = 0; k < ascii.size(); ++k) {
    const char32_t c = text[i + k];
    const auto want = static_cast<char32_t>(ascii[k]);
    const bool letter = want >= 'a' && want <= 'z';
    if (c != want && !(letter && c == want - ('a' - 'A')) && !(want == 's' && c == 0x017F) &&
        !(want == 'k' && c == 0x212A)) {
      return false;
    }
  }
  return true;
}

// U+0345 COMBINING GREEK YPOGEGRAMMENI folds to a Greek letter, and under IGNORECASE the regex
// module's classes treat it as neither a letter nor an "other" character: it is skipped like
// whitespace.
bool is_skipped(char32_t c) { return is_white_space(c) || c == 0x0345; }
bool is_other(char32_t c) { return !is_skipped(c) && !is_letter(c) && !is_number(c); }

}  // namespace

std::u32string clip_clean_text(std::string_view text) {
  // basic_clean: ftfy.fix_text (NFC for the texts duet supports), html.unescape twice, strip.
  const std::u32string unescaped = html_unescape(html_unescape(nfc(decode_utf8(text))));
  const std::u32string stripped = python_strip(unescaped);
  // whitespace_clean: re.sub(r'\s+', ' ', text).strip(); then str.lower().
  std::u32string collapsed;
  collapsed.reserve(stripped.size());
  for (size_t i = 0; i < stripped.size();) {
    if (is_white_space(stripped[i])) {
      collapsed.push_back(' ');
      while (i < stripped.size() && is_white_space(stripped[i])) {
        ++i;
      }
    } else {
      collapsed.push_back(stripped[i++]);
    }
  }
  return python_lower(python_strip(collapsed));
}

std::vector<std::u32string> clip_pre_tokenize(std::u32string_view cleaned) {
  static constexpr std::string_view kLiterals[] = {kSotText, kEotText, "'s",  "'t", "'re",
                                                   "'ve",    "'m",     "'ll", "'d"};
  std::vector<std::u32string> pieces;
  size_t i = 0;
  while (i < cleaned.size()) {
    size_t end = i;
    for (std::string_view literal : kLiterals) {
      if (literal_at(cleaned, i, literal)) {
        end = i + literal.size();
        break;
      }
    }
    if (end == i) {
      const char32_t c = cleaned[i];
      if (is_letter(c)) {
        while (end < cleaned.size() && is_letter(cleaned[end])) {
          ++end;
        }
      } else if (is_number(c)) {
        end = i + 1;
      } else if (is_other(c)) {
        while (end < cleaned.size() && is_other(cleaned[end])) {
          ++end;
        }
      }
    }
    if (end == i) {
      ++i;  // no alternative matches here: findall moves on
      continue;
    }
    pieces.emplace_back(cleaned.substr(i, end - i));
    i = end;
  }
  return pieces;
}

ClipBpeTokenizer::ClipBpeTokenizer(const std::string& merges_path) {
  std::string text = read_file(merges_path);
  if (text.empty()) {
    fail(
        "tokenizer.path: the CLIP BPE merges file '{}' is empty; expected a header line and at "
        "least {} merges (bpe_simple_vocab_16e6.txt[.gz] from OpenCLIP or OpenAI CLIP)",
        merges_path, kMergeCount);
  }
  if (is_gzip(text)) {
    text = gunzip(text, merges_path);
  }

  const auto merges = parse_merges(text, merges_path);

  // vocab = byte symbols, the same with </w>, one symbol per merge, the two special tokens.
  std::array<char32_t, 256> symbol_of_byte{};
  const std::array<unsigned char, 256> order = symbol_order(symbol_of_byte);
  std::vector<std::string> vocab;
  vocab.reserve(kVocabSize);
  id_bytes_.reserve(kVocabSize);
  for (int end_form = 0; end_form < 2; ++end_form) {
    for (unsigned char byte : order) {
      std::string symbol;
      append_utf8(symbol_of_byte[byte], symbol);
      std::string bytes(1, static_cast<char>(byte));
      if (end_form == 1) {
        symbol += kWordEnd;
        bytes += kWordEnd;
      }
      vocab.push_back(std::move(symbol));
      id_bytes_.push_back(std::move(bytes));
    }
  }
  // Python's `encoder` is a dict over vocab: a string that repeats keeps its last id. Every
  // merge must join two symbols that already exist, or BPE could produce unknown strings.
  std::unordered_map<std::string, int32_t> encoder;
  encoder.reserve(kVocabSize);
  for (size_t id = 0; id < vocab.size(); ++id) {
    encoder[vocab[id]] = static_cast<int32_t>(id);
  }
  for (size_t k = 0; k < merges.size(); ++k) {
    const auto& [left, right] = merges[k];
    for (std::string_view part : {left, right}) {
      if (encoder.count(std::string(part)) == 0) {
        fail(
            "tokenizer.path: line {} of the CLIP BPE merges file '{}' merges '{}', which is "
            "neither a byte symbol nor the result of an earlier merge; expected CLIP's "
            "bpe_simple_vocab_16e6.txt",
            k + 2, merges_path, shorten(part));
      }
    }
    std::string joined = std::string(left) + std::string(right);
    id_bytes_.push_back(id_bytes_[encoder.at(std::string(left))] +
                        id_bytes_[encoder.at(std::string(right))]);
    encoder[joined] = static_cast<int32_t>(vocab.size());
    vocab.push_back(std::move(joined));
  }
  for (std::string_view special : {kSotText, kEotText}) {
    encoder[std::string(special)] = static_cast<int32_t>(vocab.size());
    vocab.emplace_back(special);
    id_bytes_.emplace_back(special);
  }

  // Every id below is the final `encoder` entry of its string.
  auto id_of = [&encoder](const std::string& symbol) { return encoder.at(symbol); };
  for (int byte = 0; byte < 256; ++byte) {
    std::string symbol;
    append_utf8(symbol_of_byte[byte], symbol);
    byte_ids_[byte] = id_of(symbol);
    byte_end_ids_[byte] = id_of(symbol + std::string(kWordEnd));
  }
  // bpe_ranks is a dict over the merge pairs too: a repeated pair keeps its last rank.
  merges_.reserve(merges.size());
  for (size_t k = 0; k < merges.size(); ++k) {
    const std::string left(merges[k].first);
    const std::string right(merges[k].second);
    merges_[pair_key(id_of(left), id_of(right))] =
        Merge{static_cast<int32_t>(k), id_of(left + right)};
  }
  sot_id_ = id_of(std::string(kSotText));
  eot_id_ = id_of(std::string(kEotText));
  symbols_ = std::move(vocab);
  merge_symbols_.reserve(merges.size());
  for (const auto& [left, right] : merges) {
    merge_symbols_.emplace_back(std::string(left), std::string(right));
  }
}

void ClipBpeTokenizer::bpe(const std::string& piece, std::vector<int64_t>& ids) const {
  // The reference's cache starts out holding the special tokens, so they skip BPE.
  if (piece == kSotText || piece == kEotText) {
    ids.push_back(piece == kSotText ? sot_id_ : eot_id_);
    return;
  }
  std::vector<int32_t> word(piece.size());
  for (size_t i = 0; i < piece.size(); ++i) {
    const auto byte = static_cast<unsigned char>(piece[i]);
    word[i] = i + 1 < piece.size() ? byte_ids_[byte] : byte_end_ids_[byte];
  }
  std::vector<int32_t> merged;
  merged.reserve(word.size());
  while (word.size() > 1) {
    // The adjacent pair with the lowest rank ...
    const Merge* best = nullptr;
    int32_t first = 0;
    int32_t second = 0;
    for (size_t i = 0; i + 1 < word.size(); ++i) {
      auto it = merges_.find(pair_key(word[i], word[i + 1]));
      if (it != merges_.end() && (best == nullptr || it->second.rank < best->rank)) {
        best = &it->second;
        first = word[i];
        second = word[i + 1];
      }
    }
    if (best == nullptr) {
      break;
    }
    // ... is merged wherever it occurs, left to right without overlap.
    merged.clear();
    for (size_t i = 0; i < word.size();) {
      if (i + 1 < word.size() && word[i] == first && word[i + 1] == second) {
        merged.push_back(best->merged);
        i += 2;
      } else {
        merged.push_back(word[i++]);
      }
    }
    word.swap(merged);
  }
  ids.insert(ids.end(), word.begin(), word.end());
}

std::vector<int64_t> ClipBpeTokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  for (const std::u32string& piece : clip_pre_tokenize(clip_clean_text(text))) {
    bpe(encode_utf8(piece), ids);
  }
  return ids;
}

std::string ClipBpeTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string bytes;
  for (int64_t id : ids) {
    DUET_CHECK(id >= 0 && id < static_cast<int64_t>(id_bytes_.size()),
               "cannot decode token id {}: the CLIP BPE vocabulary has ids 0..{}", id,
               id_bytes_.size() - 1);
    bytes += id_bytes_[static_cast<size_t>(id)];
  }
  std::string text = encode_utf8(decode_utf8(bytes));
  for (size_t at = text.find(kWordEnd); at != std::string::npos; at = text.find(kWordEnd, at + 1)) {
    text.replace(at, kWordEnd.size(), " ");
  }
  return text;
}

TokenizerInfo ClipBpeTokenizer::info() const {
  TokenizerInfo info;
  info.vocab_size = static_cast<int64_t>(id_bytes_.size());
  info.sot_id = sot_id_;
  info.eot_id = eot_id_;
  info.pad_id = 0;
  return info;
}

}  // namespace duet::text
