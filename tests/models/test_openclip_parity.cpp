// Parity with OpenCLIP: duet's ClipModel and OpenCLIP's CLIP, given the same weights under the
// same names, produce the same normalised embeddings (float64, to ~1e-15). The weights come from
// an integer hash both sides compute exactly, so no weight file is needed; the expected
// embeddings below were printed by openclip_reference.py (open_clip_torch 3.3.0), which builds
// the same two configurations:
//   clip           QuickGELU, class-token pooling, causal text pooled at the first EOT
//   bidirectional  GELU, mean pooling, LayerScale 0.1, bidirectional text pooled at the last token
#include <torch/torch.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "model_test_util.h"
#include "models/clip_model.h"

namespace duet::models {
namespace {

// clip: 62 parameter tensors, 55617 values
const double kClipImage[2][8] = {
    {-0.013213345469210557, 0.3849619640656074, -0.73567803129951481, -0.055423715105585906,
     0.11720993071951373, 0.29351664483992701, -0.27491117323338704, 0.36313826287725143},
    {0.00079114276501255027, 0.39199525207986813, -0.73752342600917675, -0.06749843591698558,
     0.10658956751665367, 0.28623715822288687, -0.27237292763133453, 0.36105705272026967}};
const double kClipText[3][8] = {
    {0.26967812450150414, -0.26840713139234235, 0.19629532702980088, 0.44383026025539091,
     -0.11163509755980415, 0.61347322477747135, -0.06608071828763093, -0.47595767857606269},
    {-0.17420028066627433, 0.24137719791534629, 0.47190203288183635, 0.19007306133144133,
     0.082631581723816808, 0.56257099707365033, -0.38047904397887672, -0.42952718808791435},
    {0.31496153967125751, 0.23022195723619401, 0.40973331384896311, 0.39709879485250488,
     0.40332873347169218, 0.26852575076867802, -0.27781916555160607, -0.45854618389615914}};
// bidirectional: 70 parameter tensors, 55873 values
const double kBidirectionalImage[2][8] = {
    {-0.18899034213040505, 0.69827049669390706, 0.5038286463765933, 0.21634810802948418,
     0.13073229758912572, 0.27219962615369586, 0.25407473816246479, 0.14252583129805194},
    {-0.14914577774550833, 0.7087657400849422, 0.48415694387352015, 0.24544219492666214,
     0.15262800930898565, 0.24626064199059475, 0.26851352420438807, 0.15721869994139637}};
const double kBidirectionalText[3][8] = {
    {-0.20791449818896601, 0.1943430331811144, 0.041014813811993296, -0.2410847357949357,
     -0.21493183065099936, 0.76281395579999944, -0.46049485591927514, -0.13806500930033186},
    {-0.21295410199442871, 0.27310277355537443, 0.22788526476383333, 0.10193340903951938,
     -0.22610570937315599, 0.6705198870969149, -0.49342834671749031, -0.271203000715801},
    {-0.20484065526192688, 0.19193457122599142, 0.042116016141089591, -0.24109160094460527,
     -0.21154502235047287, 0.76610968495591703, -0.45880980435894525, -0.13827770976596204}};

const std::vector<std::vector<int64_t>> kTokens = {
    {48, 5, 17, 33, 49, 0, 0, 0, 0, 0, 0, 0},
    {48, 7, 7, 21, 2, 45, 12, 9, 30, 11, 3, 49},
    {48, 40, 49, 13, 8, 49, 0, 0, 0, 0, 0, 0},  // two EOTs: pooling takes the first
};

// openclip_reference.py's hash_uniform: a value in [-1, 1) from murmur3's 32-bit finaliser.
double hash_uniform(uint64_t i, uint64_t k) {
  uint32_t x = static_cast<uint32_t>(i * 0x9E3779B1u + k * 0x85EBCA77u + 0x165667B1u);
  x ^= x >> 15;
  x *= 0x2C1B3C6Du;
  x ^= x >> 12;
  x *= 0x297A2D39u;
  x ^= x >> 15;
  return static_cast<double>(x) / 2147483648.0 - 1.0;
}

torch::Tensor hashed(int64_t n, uint64_t k, double scale) {
  torch::Tensor t = torch::empty({n}, torch::kDouble);
  double* data = t.data_ptr<double>();
  for (int64_t i = 0; i < n; ++i) {
    data[i] = scale * hash_uniform(static_cast<uint64_t>(i), k);
  }
  return t;
}

config::ModelConfig parity_config(bool clip) {
  config::ModelConfig c;
  c.embed_dim = 8;
  c.vision.image_size = 16;
  c.vision.patch_size = 4;
  c.vision.width = 32;
  c.vision.layers = 2;
  c.vision.heads = 4;
  c.text.context_length = 12;
  c.text.vocab_size = 50;
  c.text.width = 32;
  c.text.layers = 2;
  c.text.heads = 4;
  if (clip) {
    c.vision.act = c.text.act = config::Activation::kQuickGelu;
  } else {
    c.vision.pool = config::VisionPool::kMean;
    c.text.pool = config::TextPool::kLast;
    c.text.causal = false;
    c.vision.ls_init = c.text.ls_init = 0.1;
  }
  return c;
}

void check_parity(bool clip, int64_t tensors, int64_t values, const double (&image)[2][8],
                  const double (&text)[3][8]) {
  for (const auto attention : {config::AttentionImpl::kExplicit, config::AttentionImpl::kAuto}) {
    INFO("attention " << config::name(attention));
    config::ModelConfig config = parity_config(clip);
    config.attention = attention;
    ClipModel model(config, test::tiny_tokenizer());
    model->to(torch::kDouble);
    model->eval();
    auto params = model->named_parameters();
    std::vector<std::string> names;
    int64_t total = 0;
    for (const auto& item : params) {
      names.push_back(item.key());
      total += item.value().numel();
    }
    std::sort(names.begin(), names.end());  // OpenCLIP's parameter k is the k-th sorted name
    REQUIRE(static_cast<int64_t>(names.size()) == tensors);
    REQUIRE(total == values);
    {
      torch::NoGradGuard no_grad;
      for (size_t k = 0; k < names.size(); ++k) {
        torch::Tensor p = params[names[k]];
        p.copy_(hashed(p.numel(), k, 0.2).view_as(p));
      }
    }
    torch::Tensor images = hashed(2 * 3 * 16 * 16, 1000, 0.5).view({2, 3, 16, 16});
    torch::Tensor tokens = torch::empty({3, 12}, torch::kLong);
    for (int64_t r = 0; r < 3; ++r) {
      for (int64_t c = 0; c < 12; ++c) {
        tokens[r][c] = kTokens[static_cast<size_t>(r)][static_cast<size_t>(c)];
      }
    }
    torch::NoGradGuard no_grad;
    torch::Tensor image_expected =
        torch::from_blob(const_cast<double*>(&image[0][0]), {2, 8}, torch::kDouble);
    torch::Tensor text_expected =
        torch::from_blob(const_cast<double*>(&text[0][0]), {3, 8}, torch::kDouble);
    CHECK(test::max_abs_diff(model->encode_image(images), image_expected) < 1e-12);
    CHECK(test::max_abs_diff(model->encode_text(tokens), text_expected) < 1e-12);
  }
}

TEST_CASE("embeddings equal OpenCLIP's: CLIP layout", "[models][parity]") {
  check_parity(true, 62, 55617, kClipImage, kClipText);
}

TEST_CASE("embeddings equal OpenCLIP's: mean pooling, last-token pooling, LayerScale",
          "[models][parity]") {
  check_parity(false, 70, 55873, kBidirectionalImage, kBidirectionalText);
}

}  // namespace
}  // namespace duet::models
