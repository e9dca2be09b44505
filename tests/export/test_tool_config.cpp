// The configuration and tokenizer files written beside exported weights: SentencePiece model
// parsing and its tokenizer.json, transformers' and OpenCLIP's config fields for a SigLIP model.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/test_util.h"
#include "export/sentencepiece_json.h"
#include "export/tool_config.h"
#include "text/sentencepiece_tokenizer.h"

namespace duet::export_ {
namespace {

std::vector<std::string> captions() {
  std::vector<std::string> out;
  const std::vector<std::string> words = {"a",   "photo", "of",    "the",  "red", "cat",
                                          "dog", "small", "Large", "boat", "on",  "sea"};
  for (size_t i = 0; i < 300; ++i) {
    std::string c;
    for (size_t k = 0; k < 3 + i % 5; ++k) {
      c += (k ? " " : "") + words[(i * 7 + k * 5) % words.size()];
    }
    out.push_back(c);
  }
  return out;
}

TEST_CASE("SentencePiece models parse and become a tokenizer.json", "[export][tokenizer]") {
  test::TempDir dir;
  for (const char* kind : {"unigram", "bpe"}) {
    INFO(kind);
    text::SentencePieceTrainOptions options;
    options.model_type = kind;
    const std::string path =
        text::train_sentencepiece(captions(), 30, dir / (std::string("sp-") + kind), options);
    const text::SentencePieceTokenizer tokenizer(path);
    const SentencePieceModel model = parse_sentencepiece_model(tokenizer.serialized_model());
    REQUIRE(model.pieces.size() == 30);
    CHECK(model.model_type == (std::string(kind) == "bpe" ? SentencePieceModelType::kBpe
                                                          : SentencePieceModelType::kUnigram));
    CHECK(model.pieces[0].type == PieceType::kControl);  // <pad>
    CHECK(model.pieces[1].type == PieceType::kUnknown);  // <unk>
    CHECK(model.pieces[3].piece == "</s>");
    CHECK_FALSE(model.precompiled_charsmap.empty());  // nmt_nfkc_cf
    CHECK(model.add_dummy_prefix);

    std::string why_not;
    const auto json =
        nlohmann::json::parse(sentencepiece_tokenizer_json(model, tokenizer.info(), why_not));
    CHECK(why_not.empty());
    CHECK(json.at("model").at("type") == (std::string(kind) == "bpe" ? "BPE" : "Unigram"));
    CHECK(json.at("normalizer").at("normalizers").at(0).at("type") == "Precompiled");
    // duet's template: <s> $A </s>
    const auto& single = json.at("post_processor").at("single");
    REQUIRE(single.size() == 3);
    CHECK(single.at(0).at("SpecialToken").at("id") == "<s>");
    CHECK(single.at(2).at("SpecialToken").at("id") == "</s>");
    CHECK(json.at("added_tokens").size() == 4);  // pad, unk, bos, eos
  }
  CHECK_THROWS_AS(parse_sentencepiece_model(std::string("\x0a\xff", 2)), Error);  // truncated
  CHECK_THROWS_AS(parse_sentencepiece_model(""), Error);                          // no pieces
  SentencePieceModel word;
  word.pieces.push_back({"<unk>", 0.0f, PieceType::kUnknown});
  word.model_type = SentencePieceModelType::kWord;
  std::string why_not;
  CHECK(sentencepiece_tokenizer_json(word, text::TokenizerInfo{}, why_not).empty());
  CHECK_THAT(why_not, Catch::Contains("word or char"));
}

TEST_CASE("transformers and OpenCLIP config fields of a SigLIP model", "[export][config]") {
  config::Config c;
  auto& m = c.model;
  m.embed_dim = 64;
  m.logit_bias = true;
  m.vision = {};
  m.vision.image_size = 32;
  m.vision.patch_size = 8;
  m.vision.width = 64;
  m.vision.heads = 4;
  m.vision.layers = 2;
  m.vision.act = config::Activation::kGeluTanh;
  m.text.width = 48;
  m.text.heads = 4;
  m.text.vocab_size = 100;
  m.text.context_length = 16;
  text::TokenizerInfo info;
  info.vocab_size = 100;
  info.sot_id = 2;
  info.eot_id = 3;
  const nlohmann::json hf = hf_model_config(m, info, "float16");
  CHECK(hf.at("model_type") == "siglip");
  CHECK(hf.at("architectures").at(0) == "SiglipModel");
  CHECK(hf.at("torch_dtype") == "float16");
  CHECK(hf.at("text_config").at("projection_size") == 64);
  CHECK(hf.at("text_config").at("max_position_embeddings") == 16);
  CHECK(hf.at("text_config").at("eos_token_id") == 3);
  CHECK(hf.at("vision_config").at("hidden_act") == "gelu_pytorch_tanh");
  CHECK(hf.at("vision_config").at("vision_use_head") == true);
  CHECK(hf.at("vision_config").at("intermediate_size") == 256);
  CHECK_FALSE(hf.contains("projection_dim"));

  const nlohmann::json pre = hf_preprocessor_config(c);
  CHECK(pre.at("image_processor_type") == "CLIPImageProcessor");
  CHECK(pre.at("resample") == 3);
  CHECK(pre.at("crop_size").at("width") == 32);

  m.logit_bias = false;
  const nlohmann::json oc = open_clip_config(c, info);
  CHECK(oc.at("model_cfg").at("vision_cfg").at("act_kwargs").at("approximate") == "tanh");
  CHECK(oc.at("model_cfg").at("text_cfg").at("pool_type") == "eos");  // EOT 3 is not the max id
  CHECK(oc.at("model_cfg").at("text_cfg").at("eos_id") == 3);
  CHECK(oc.at("preprocess_cfg").at("size") == 32);
}

}  // namespace
}  // namespace duet::export_
