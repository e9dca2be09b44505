// SentencePiece ModelProto -> tokenizers' tokenizer.json (see sentencepiece_json.h). The proto
// is read with a minimal protobuf wire-format parser: only the fields below are used, all
// others skipped; proto2 defaults apply to absent ones.
//   ModelProto      1: pieces (repeated SentencePiece), 2: trainer_spec, 3: normalizer_spec
//   SentencePiece   1: piece (string), 2: score (float), 3: type (enum)
//   TrainerSpec     3: model_type (enum), 35: byte_fallback (bool)
//   NormalizerSpec  2: precompiled_charsmap (bytes), 3: add_dummy_prefix, 4:
//                   remove_extra_whitespaces, 5: escape_whitespaces (bools, default true)
#include "export/sentencepiece_json.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>
#include <tuple>

#include "common/error.h"

namespace duet::export_ {
namespace {

constexpr int kNormal = 1;
constexpr int kUnknown = 2;
constexpr int kControl = 3;
constexpr int kUserDefined = 4;
constexpr int kUnigram = 1;
constexpr int kBpe = 2;
const std::string kSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's escaped space

class WireReader {
 public:
  explicit WireReader(std::string_view bytes) : bytes_(bytes) {}
  bool done() const { return pos_ >= bytes_.size(); }

  uint64_t varint() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= bytes_.size()) {
        fail("the SentencePiece model is truncated (inside a varint)");
      }
      const auto byte = static_cast<unsigned char>(bytes_[pos_++]);
      value |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) {
        return value;
      }
    }
    fail("the SentencePiece model has a malformed varint");
  }

  std::string_view bytes(size_t n) {
    if (n > bytes_.size() - pos_) {
      fail("the SentencePiece model is truncated ({} bytes announced, {} left)", n,
           bytes_.size() - pos_);
    }
    std::string_view out = bytes_.substr(pos_, n);
    pos_ += n;
    return out;
  }

  // Calls on_field(number, wire_type, reader-for-value) for each field.
  void fields(const std::function<void(uint64_t, int, WireReader&)>& on_field) {
    while (!done()) {
      const uint64_t key = varint();
      const auto wire = static_cast<int>(key & 7);
      const uint64_t number = key >> 3;
      switch (wire) {
        case 0: {
          WireReader value{std::string_view()};
          value.value_ = varint();
          on_field(number, wire, value);
          break;
        }
        case 1: {
          WireReader value(bytes(8));
          on_field(number, wire, value);
          break;
        }
        case 2: {
          WireReader value(bytes(static_cast<size_t>(varint())));
          on_field(number, wire, value);
          break;
        }
        case 5: {
          WireReader value(bytes(4));
          on_field(number, wire, value);
          break;
        }
        default:
          fail("the SentencePiece model has an unsupported protobuf wire type {}", wire);
      }
    }
  }

  uint64_t value() const { return value_; }  // a varint field's value
  std::string_view all() const { return bytes_; }
  float fixed32_float() const {
    DUET_CHECK(bytes_.size() == 4, "the SentencePiece model has a malformed float");
    uint32_t bits = 0;
    for (int i = 3; i >= 0; --i) {
      bits = (bits << 8) | static_cast<unsigned char>(bytes_[static_cast<size_t>(i)]);
    }
    float f = 0.0f;
    std::memcpy(&f, &bits, 4);
    return f;
  }

 private:
  std::string_view bytes_;
  size_t pos_ = 0;
  uint64_t value_ = 0;
};

std::string base64(const std::string& bytes) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t n = (static_cast<unsigned char>(bytes[i]) << 16) |
                       (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
    out += table[(n >> 18) & 63];
    out += table[(n >> 12) & 63];
    out += table[(n >> 6) & 63];
    out += table[n & 63];
  }
  if (i + 1 == bytes.size()) {
    const uint32_t n = static_cast<unsigned char>(bytes[i]) << 16;
    out += table[(n >> 18) & 63];
    out += table[(n >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    const uint32_t n = (static_cast<unsigned char>(bytes[i]) << 16) |
                       (static_cast<unsigned char>(bytes[i + 1]) << 8);
    out += table[(n >> 18) & 63];
    out += table[(n >> 12) & 63];
    out += table[(n >> 6) & 63];
    out += '=';
  }
  return out;
}

// Offsets of the UTF-8 code point boundaries inside `s` (excluding 0 and size()).
std::vector<size_t> inner_boundaries(const std::string& s) {
  std::vector<size_t> out;
  for (size_t i = 1; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      out.push_back(i);
    }
  }
  return out;
}

// Escapes regex metacharacters (as Python's re.escape) for tokenizers' Split pattern.
std::string regex_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x80 && !std::isalnum(u) && c != '_') {
      out += '\\';
    }
    out += c;
  }
  return out;
}

nlohmann::ordered_json replace(const std::string& kind, const std::string& pattern,
                               const std::string& content) {
  return {{"type", "Replace"}, {"pattern", {{kind, pattern}}}, {"content", content}};
}

}  // namespace

SentencePieceModel parse_sentencepiece_model(const std::string& serialized) {
  SentencePieceModel model;
  WireReader reader(serialized);
  reader.fields([&](uint64_t number, int wire, WireReader& value) {
    if (number == 1 && wire == 2) {
      SentencePieceModel::Piece piece;
      WireReader(value.all()).fields([&](uint64_t n, int w, WireReader& v) {
        if (n == 1 && w == 2) {
          piece.piece = std::string(v.all());
        } else if (n == 2 && w == 5) {
          piece.score = v.fixed32_float();
        } else if (n == 3 && w == 0) {
          piece.type = static_cast<int>(v.value());
        }
      });
      model.pieces.push_back(std::move(piece));
    } else if (number == 2 && wire == 2) {
      WireReader(value.all()).fields([&](uint64_t n, int w, WireReader& v) {
        if (n == 3 && w == 0) {
          model.model_type = static_cast<int>(v.value());
        } else if (n == 35 && w == 0) {
          model.byte_fallback = v.value() != 0;
        }
      });
    } else if (number == 3 && wire == 2) {
      WireReader(value.all()).fields([&](uint64_t n, int w, WireReader& v) {
        if (n == 2 && w == 2) {
          model.precompiled_charsmap = std::string(v.all());
        } else if (n == 3 && w == 0) {
          model.add_dummy_prefix = v.value() != 0;
        } else if (n == 4 && w == 0) {
          model.remove_extra_whitespaces = v.value() != 0;
        } else if (n == 5 && w == 0) {
          model.escape_whitespaces = v.value() != 0;
        }
      });
    }
  });
  if (model.pieces.empty()) {
    fail("the SentencePiece model has no pieces");
  }
  return model;
}

std::string sentencepiece_tokenizer_json(const SentencePieceModel& model,
                                         const text::TokenizerInfo& info, std::string& why_not) {
  if (model.model_type != kUnigram && model.model_type != kBpe) {
    why_not = fmt::format(
        "the SentencePiece model type {} (word or char) has no tokenizers counterpart that "
        "reproduces its ids",
        model.model_type);
    return "";
  }
  const auto& pieces = model.pieces;
  int64_t unk_id = -1;
  std::vector<std::string> user_defined;
  nlohmann::ordered_json added = nlohmann::ordered_json::array();
  for (size_t id = 0; id < pieces.size(); ++id) {
    const int type = pieces[id].type;
    if (type == kUnknown && unk_id < 0) {
      unk_id = static_cast<int64_t>(id);
    }
    if (type == kUserDefined) {
      user_defined.push_back(pieces[id].piece);
    }
    if (type == kUnknown || type == kControl) {
      added.push_back({{"id", id},
                       {"content", pieces[id].piece},
                       {"single_word", false},
                       {"lstrip", false},
                       {"rstrip", false},
                       {"normalized", false},
                       {"special", true}});
    }
  }

  // normalizer, in SentencePiece's order
  nlohmann::ordered_json normalizers = nlohmann::ordered_json::array();
  if (!model.precompiled_charsmap.empty()) {
    normalizers.push_back(
        {{"type", "Precompiled"}, {"precompiled_charsmap", base64(model.precompiled_charsmap)}});
  }
  if (model.remove_extra_whitespaces) {
    // Only spaces: SentencePiece leaves other whitespace alone.
    normalizers.push_back(replace("Regex", "\\A +| +\\z", ""));
    normalizers.push_back(replace("Regex", " {2,}", " "));
  }
  if (model.escape_whitespaces) {
    normalizers.push_back(replace("String", " ", kSpace));
  }
  if (model.add_dummy_prefix) {
    // Metaspace skips the dummy prefix when the text already starts with U+2581; SentencePiece
    // does not.
    normalizers.push_back(replace("Regex", "\\A" + kSpace, kSpace + kSpace));
  }

  nlohmann::ordered_json pre = nlohmann::ordered_json::array();
  if (model.add_dummy_prefix) {
    pre.push_back({{"type", "Metaspace"},
                   {"replacement", kSpace},
                   {"prepend_scheme", "always"},
                   {"split", false}});
  }
  if (!user_defined.empty()) {
    std::sort(user_defined.begin(), user_defined.end(),
              [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
    std::string pattern;
    for (const auto& piece : user_defined) {
      pattern += (pattern.empty() ? "" : "|") + regex_escape(piece);
    }
    pre.push_back({{"type", "Split"},
                   {"pattern", {{"Regex", pattern}}},
                   {"behavior", "Isolated"},
                   {"invert", false}});
  }

  nlohmann::ordered_json model_json;
  if (model.model_type == kUnigram) {
    nlohmann::ordered_json vocab = nlohmann::ordered_json::array();
    for (const auto& p : pieces) {
      vocab.push_back({p.piece, static_cast<double>(p.score)});
    }
    model_json = {{"type", "Unigram"},
                  {"unk_id", unk_id >= 0 ? nlohmann::ordered_json(unk_id) : nullptr},
                  {"vocab", vocab},
                  {"byte_fallback", model.byte_fallback}};
  } else {
    // BPE: merges of two normal pieces into a normal piece, ranked by the merged piece's score
    // (higher first), then its id.
    std::map<std::string, std::pair<float, size_t>> normal;
    nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
    for (size_t id = 0; id < pieces.size(); ++id) {
      vocab[pieces[id].piece] = id;
      if (pieces[id].type == kNormal) {
        normal[pieces[id].piece] = {pieces[id].score, id};
      }
    }
    std::vector<std::tuple<float, size_t, std::string, std::string>> ranked;
    for (const auto& [token, rank] : normal) {
      for (size_t split : inner_boundaries(token)) {
        std::string left = token.substr(0, split);
        std::string right = token.substr(split);
        if (normal.count(left) && normal.count(right)) {
          ranked.emplace_back(-rank.first, rank.second, std::move(left), std::move(right));
        }
      }
    }
    std::sort(ranked.begin(), ranked.end());
    nlohmann::ordered_json merges = nlohmann::ordered_json::array();
    for (const auto& [score, id, left, right] : ranked) {
      merges.push_back({left, right});
    }
    model_json = {{"type", "BPE"},
                  {"dropout", nullptr},
                  {"unk_token", unk_id >= 0 ? nlohmann::ordered_json(pieces[unk_id].piece)
                                            : nlohmann::ordered_json(nullptr)},
                  {"continuing_subword_prefix", nullptr},
                  {"end_of_word_suffix", nullptr},
                  {"fuse_unk", true},
                  {"byte_fallback", model.byte_fallback},
                  {"ignore_merges", !user_defined.empty()},
                  {"vocab", vocab},
                  {"merges", merges}};
  }

  // duet's template: [SOT] ids EOT.
  auto piece_of = [&](int64_t id) { return pieces.at(static_cast<size_t>(id)).piece; };
  nlohmann::ordered_json single = nlohmann::ordered_json::array();
  nlohmann::ordered_json pair = nlohmann::ordered_json::array();
  nlohmann::ordered_json special = nlohmann::ordered_json::object();
  auto special_token = [&](int64_t id, int type_id) {
    special[piece_of(id)] = {{"id", piece_of(id)}, {"ids", {id}}, {"tokens", {piece_of(id)}}};
    return nlohmann::ordered_json{{"SpecialToken", {{"id", piece_of(id)}, {"type_id", type_id}}}};
  };
  auto sequence = [](const char* id, int type_id) {
    return nlohmann::ordered_json{{"Sequence", {{"id", id}, {"type_id", type_id}}}};
  };
  if (info.sot_id >= 0) {
    single.push_back(special_token(info.sot_id, 0));
    pair.push_back(special_token(info.sot_id, 0));
  }
  single.push_back(sequence("A", 0));
  single.push_back(special_token(info.eot_id, 0));
  pair.push_back(sequence("A", 0));
  pair.push_back(special_token(info.eot_id, 0));
  pair.push_back(sequence("B", 1));
  pair.push_back(special_token(info.eot_id, 1));

  nlohmann::ordered_json decoders = nlohmann::ordered_json::array();
  decoders.push_back(replace("String", kSpace, " "));
  if (model.byte_fallback) {
    decoders.push_back({{"type", "ByteFallback"}});
  }
  if (model.add_dummy_prefix || model.byte_fallback) {
    decoders.push_back({{"type", "Fuse"}});
  }
  if (model.add_dummy_prefix) {
    decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
  }

  nlohmann::ordered_json out = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", {{"type", "Sequence"}, {"normalizers", normalizers}}},
      {"pre_tokenizer", pre.empty()
                            ? nlohmann::ordered_json(nullptr)
                            : nlohmann::ordered_json{{"type", "Sequence"}, {"pretokenizers", pre}}},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", single},
        {"pair", pair},
        {"special_tokens", special}}},
      {"decoder", {{"type", "Sequence"}, {"decoders", decoders}}},
      {"model", model_json}};
  return out.dump() + "\n";
}

}  // namespace duet::export_
