// SentencePiece ModelProto -> tokenizers' tokenizer.json (see sentencepiece_json.h).
//
// libsentencepiece loads (and so validates) the model, and its SentencePieceProcessor gives each
// piece's text, score and type. Debian's libsentencepiece-dev ships no generated ModelProto
// header, so the fields the processor does not expose are read from the serialized proto with
// common/protobuf_wire.h (all other fields skipped; proto2 defaults apply to absent ones):
//   ModelProto      1: pieces (repeated SentencePiece), 2: trainer_spec, 3: normalizer_spec
//   SentencePiece   3: type (enum), for USER_DEFINED, which has no processor query
//   TrainerSpec     3: model_type (enum), 35: byte_fallback (bool)
//   NormalizerSpec  2: precompiled_charsmap (bytes), 3: add_dummy_prefix, 4:
//                   remove_extra_whitespaces, 5: escape_whitespaces (bools, default true)
#include "export/sentencepiece_json.h"

#include <sentencepiece_processor.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <nlohmann/json.hpp>
#include <string_view>
#include <tuple>

#include "common/error.h"
#include "common/protobuf_wire.h"
#include "common/strings.h"

namespace duet::export_ {
namespace {

using Json = nlohmann::ordered_json;
using protobuf::Field;
using protobuf::WireType;

const std::string kSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's escaped space
constexpr std::string_view kWhat = "the SentencePiece model";

// ---- reading the model -----------------------------------------------------------------------

PieceType piece_type(const sentencepiece::SentencePieceProcessor& processor, int id) {
  if (processor.IsUnknown(id)) {
    return PieceType::kUnknown;
  }
  if (processor.IsControl(id)) {
    return PieceType::kControl;
  }
  if (processor.IsUnused(id)) {
    return PieceType::kUnused;
  }
  if (processor.IsByte(id)) {
    return PieceType::kByte;
  }
  return PieceType::kNormal;  // or USER_DEFINED: see user_defined_ids
}

bool is_varint(const Field& f, uint32_t number) {
  return f.number == number && f.type == WireType::kVarint;
}

bool is_bytes(const Field& f, uint32_t number) {
  return f.number == number && f.type == WireType::kLengthDelimited;
}

// Ids of the USER_DEFINED pieces, and how many pieces the proto holds.
std::vector<size_t> user_defined_ids(const std::string& serialized, size_t& piece_count) {
  std::vector<size_t> ids;
  piece_count = 0;
  protobuf::read_fields(serialized, kWhat, [&](const Field& f) {
    if (!is_bytes(f, 1)) {
      return;
    }
    protobuf::read_fields(f.bytes, kWhat, [&](const Field& p) {
      if (is_varint(p, 3) && p.varint == static_cast<uint64_t>(PieceType::kUserDefined)) {
        ids.push_back(piece_count);
      }
    });
    ++piece_count;
  });
  return ids;
}

void read_trainer_spec(std::string_view spec, SentencePieceModel& model) {
  protobuf::read_fields(spec, kWhat, [&](const Field& f) {
    if (is_varint(f, 3)) {
      model.model_type = static_cast<SentencePieceModelType>(f.varint);
    } else if (is_varint(f, 35)) {
      model.byte_fallback = f.varint != 0;
    }
  });
}

void read_normalizer_spec(std::string_view spec, SentencePieceModel& model) {
  protobuf::read_fields(spec, kWhat, [&](const Field& f) {
    if (is_bytes(f, 2)) {
      model.precompiled_charsmap = std::string(f.bytes);
    } else if (is_varint(f, 3)) {
      model.add_dummy_prefix = f.varint != 0;
    } else if (is_varint(f, 4)) {
      model.remove_extra_whitespaces = f.varint != 0;
    } else if (is_varint(f, 5)) {
      model.escape_whitespaces = f.varint != 0;
    }
  });
}

void read_specs(const std::string& serialized, SentencePieceModel& model) {
  protobuf::read_fields(serialized, kWhat, [&](const Field& f) {
    if (is_bytes(f, 2)) {
      read_trainer_spec(f.bytes, model);
    } else if (is_bytes(f, 3)) {
      read_normalizer_spec(f.bytes, model);
    }
  });
}

// ---- text helpers ----------------------------------------------------------------------------

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

Json replace(const std::string& kind, const std::string& pattern, const std::string& content) {
  return {{"type", "Replace"}, {"pattern", {{kind, pattern}}}, {"content", content}};
}

// ---- the parts of tokenizer.json -------------------------------------------------------------

// The unknown and control pieces, which tokenizers must match whole and never split.
Json added_tokens(const std::vector<SentencePieceModel::Piece>& pieces) {
  Json added = Json::array();
  for (size_t id = 0; id < pieces.size(); ++id) {
    if (pieces[id].type == PieceType::kUnknown || pieces[id].type == PieceType::kControl) {
      added.push_back({{"id", id},
                       {"content", pieces[id].piece},
                       {"single_word", false},
                       {"lstrip", false},
                       {"rstrip", false},
                       {"normalized", false},
                       {"special", true}});
    }
  }
  return added;
}

// SentencePiece's normalisation, in its order.
Json normalizer(const SentencePieceModel& model) {
  Json normalizers = Json::array();
  if (!model.precompiled_charsmap.empty()) {
    normalizers.push_back(
        {{"type", "Precompiled"}, {"precompiled_charsmap", base64_encode(model.precompiled_charsmap)}});
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
  return {{"type", "Sequence"}, {"normalizers", normalizers}};
}

// The Metaspace dummy prefix, then user-defined pieces split out whole (longest first); null
// when neither applies.
Json pre_tokenizer(const SentencePieceModel& model, std::vector<std::string> user_defined) {
  Json pre = Json::array();
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
  return pre.empty() ? Json(nullptr) : Json{{"type", "Sequence"}, {"pretokenizers", pre}};
}

Json unigram_model(const SentencePieceModel& model, int64_t unk_id) {
  Json vocab = Json::array();
  for (const auto& p : model.pieces) {
    vocab.push_back({p.piece, static_cast<double>(p.score)});
  }
  return {{"type", "Unigram"},
          {"unk_id", unk_id >= 0 ? Json(unk_id) : Json(nullptr)},
          {"vocab", vocab},
          {"byte_fallback", model.byte_fallback}};
}

// BPE merges: of two normal pieces into a normal piece, ranked by the merged piece's score
// (higher first), then its id.
Json bpe_merges(const std::vector<SentencePieceModel::Piece>& pieces) {
  std::map<std::string, std::pair<float, size_t>> normal;
  for (size_t id = 0; id < pieces.size(); ++id) {
    if (pieces[id].type == PieceType::kNormal) {
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
  Json merges = Json::array();
  for (const auto& [score, id, left, right] : ranked) {
    merges.push_back({left, right});
  }
  return merges;
}

Json bpe_model(const SentencePieceModel& model, int64_t unk_id, bool has_user_defined) {
  const auto& pieces = model.pieces;
  Json vocab = Json::object();
  for (size_t id = 0; id < pieces.size(); ++id) {
    vocab[pieces[id].piece] = id;
  }
  return {
      {"type", "BPE"},
      {"dropout", nullptr},
      {"unk_token", unk_id >= 0 ? Json(pieces[static_cast<size_t>(unk_id)].piece) : Json(nullptr)},
      {"continuing_subword_prefix", nullptr},
      {"end_of_word_suffix", nullptr},
      {"fuse_unk", true},
      {"byte_fallback", model.byte_fallback},
      {"ignore_merges", has_user_defined},
      {"vocab", vocab},
      {"merges", bpe_merges(pieces)}};
}

// duet's template: [SOT] $A EOT (and [SOT] $A EOT $B EOT for pairs).
Json post_processor(const std::vector<SentencePieceModel::Piece>& pieces,
                    const text::TokenizerInfo& info) {
  auto piece_of = [&](int64_t id) { return pieces.at(static_cast<size_t>(id)).piece; };
  Json single = Json::array();
  Json pair = Json::array();
  Json special = Json::object();
  auto special_token = [&](int64_t id, int type_id) {
    special[piece_of(id)] = {{"id", piece_of(id)}, {"ids", {id}}, {"tokens", {piece_of(id)}}};
    return Json{{"SpecialToken", {{"id", piece_of(id)}, {"type_id", type_id}}}};
  };
  auto sequence = [](const char* id, int type_id) {
    return Json{{"Sequence", {{"id", id}, {"type_id", type_id}}}};
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
  return {{"type", "TemplateProcessing"},
          {"single", single},
          {"pair", pair},
          {"special_tokens", special}};
}

Json decoder(const SentencePieceModel& model) {
  Json decoders = Json::array();
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
  return {{"type", "Sequence"}, {"decoders", decoders}};
}

}  // namespace

SentencePieceModel parse_sentencepiece_model(const std::string& serialized) {
  sentencepiece::SentencePieceProcessor processor;
  const auto status = processor.LoadFromSerializedProto(serialized);
  if (!status.ok()) {
    fail("{} cannot be loaded: {}", kWhat, status.ToString());
  }
  const int size = processor.GetPieceSize();
  DUET_CHECK(size > 0, "{} has no pieces", kWhat);
  SentencePieceModel model;
  for (int id = 0; id < size; ++id) {
    model.pieces.push_back(
        {processor.IdToPiece(id), processor.GetScore(id), piece_type(processor, id)});
  }
  size_t proto_pieces = 0;
  for (const size_t id : user_defined_ids(serialized, proto_pieces)) {
    model.pieces.at(id).type = PieceType::kUserDefined;
  }
  DUET_CHECK(proto_pieces == model.pieces.size(),
             "{} holds {} pieces, but libsentencepiece loaded {}", kWhat, proto_pieces,
             model.pieces.size());
  read_specs(serialized, model);
  return model;
}

std::string sentencepiece_tokenizer_json(const SentencePieceModel& model,
                                         const text::TokenizerInfo& info, std::string& why_not) {
  const bool unigram = model.model_type == SentencePieceModelType::kUnigram;
  if (!unigram && model.model_type != SentencePieceModelType::kBpe) {
    why_not = fmt::format(
        "the SentencePiece model type {} (word or char) has no tokenizers counterpart that "
        "reproduces its ids",
        static_cast<int>(model.model_type));
    return "";
  }
  int64_t unk_id = -1;
  std::vector<std::string> user_defined;
  for (size_t id = 0; id < model.pieces.size(); ++id) {
    if (model.pieces[id].type == PieceType::kUnknown && unk_id < 0) {
      unk_id = static_cast<int64_t>(id);
    }
    if (model.pieces[id].type == PieceType::kUserDefined) {
      user_defined.push_back(model.pieces[id].piece);
    }
  }
  const Json out = {{"version", "1.0"},
                    {"truncation", nullptr},
                    {"padding", nullptr},
                    {"added_tokens", added_tokens(model.pieces)},
                    {"normalizer", normalizer(model)},
                    {"pre_tokenizer", pre_tokenizer(model, user_defined)},
                    {"post_processor", post_processor(model.pieces, info)},
                    {"decoder", decoder(model)},
                    {"model", unigram ? unigram_model(model, unk_id)
                                      : bpe_model(model, unk_id, !user_defined.empty())}};
  return out.dump() + "\n";
}

}  // namespace duet::export_
