// ClipModel: OpenAI's state-dict names, exact parameter counts of the presets, unit-norm
// embeddings, OpenCLIP's initialisation statistics, whole-model kernel and checkpointing
// equivalence, and `duet model summary` run as the real binary.
#include <sys/wait.h>
#include <torch/torch.h>

#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "common/torch_compat.h"
#include "config/loader.h"
#include "model_test_util.h"
#include "models/clip_model.h"

namespace duet::models {
namespace {

using test::max_abs_diff;

std::string preset(const std::string& name) {
  return std::string(DUET_TEST_SOURCE_DIR) + "/configs/models/" + name + ".yaml";
}

text::TokenizerInfo tokenizer_for(const config::ModelConfig& config) {
  text::TokenizerInfo info;
  info.vocab_size = config.text.vocab_size;
  info.eot_id = config.text.vocab_size - 1;
  return info;
}

std::set<std::string> parameter_names(const torch::nn::Module& module) {
  std::set<std::string> names;
  for (const auto& item : module.named_parameters()) {
    names.insert(item.key());
  }
  return names;
}

// Standard deviation over all elements, as a double.
double stddev(const torch::Tensor& t) { return t.to(torch::kDouble).std().item<double>(); }

TEST_CASE("state-dict keys are OpenAI CLIP's", "[models][clip]") {
  ClipModel model(test::tiny_config(), test::tiny_tokenizer());
  std::set<std::string> expected = {"visual.class_embedding",
                                    "visual.positional_embedding",
                                    "visual.proj",
                                    "visual.conv1.weight",
                                    "visual.ln_pre.weight",
                                    "visual.ln_pre.bias",
                                    "visual.ln_post.weight",
                                    "visual.ln_post.bias",
                                    "token_embedding.weight",
                                    "positional_embedding",
                                    "ln_final.weight",
                                    "ln_final.bias",
                                    "text_projection",
                                    "logit_scale"};
  for (const std::string tower : {"visual.transformer", "transformer"}) {
    for (int layer = 0; layer < 2; ++layer) {
      const std::string block = tower + ".resblocks." + std::to_string(layer) + ".";
      for (const char* name :
           {"attn.in_proj_weight", "attn.in_proj_bias", "attn.out_proj.weight",
            "attn.out_proj.bias", "ln_1.weight", "ln_1.bias", "mlp.c_fc.weight", "mlp.c_fc.bias",
            "mlp.c_proj.weight", "mlp.c_proj.bias", "ln_2.weight", "ln_2.bias"}) {
        expected.insert(block + name);
      }
    }
  }
  CHECK(parameter_names(*model) == expected);
  // Every tensor once: the text parts are shared with the text tower, not copied.
  CHECK(model->named_parameters().size() == expected.size());
  CHECK(model->named_parameters()["positional_embedding"].is_same(
      model->text_tower->positional_embedding));
  CHECK(model->named_parameters()["transformer.resblocks.1.mlp.c_fc.weight"].is_same(
      model->text_tower->transformer->named_parameters()["resblocks.1.mlp.c_fc.weight"]));
  CHECK(model->logit_scale.dim() == 0);
  CHECK_FALSE(model->logit_bias.defined());

  config::ModelConfig siglip = test::tiny_config();
  siglip.logit_bias = true;
  siglip.init_logit_scale = std::log(10.0);
  siglip.init_logit_bias = -10.0;
  siglip.vision.pool = config::VisionPool::kAttention;
  siglip.vision.ls_init = 0.1;
  ClipModel with_bias(siglip, test::tiny_tokenizer());
  auto names = parameter_names(*with_bias);
  CHECK(names.count("logit_bias") == 1);
  CHECK(names.count("visual.attn_pool.probe") == 1);
  CHECK(names.count("visual.transformer.resblocks.1.ls_2.gamma") == 1);
  CHECK(names.count("transformer.resblocks.1.ls_2.gamma") == 0);  // text ls_init stays 0
  CHECK(with_bias->logit_bias.dim() == 0);
  CHECK(with_bias->logit_bias.item<double>() == -10.0);
  CHECK(with_bias->logit_scale.item<double>() == Approx(std::log(10.0)));
}

TEST_CASE("parameter counts of the OpenAI presets are exact", "[models][clip][presets]") {
  // {preset, image tower, text tower, total}: OpenAI's models with context 77, vocab 49,408.
  const std::vector<std::tuple<std::string, int64_t, int64_t, int64_t>> presets = {
      {"ViT-B-32", 87849216, 63428096, 151277313},
      {"ViT-B-16", 86192640, 63428096, 149620737},
      {"ViT-L-14", 303966208, 123650304, 427616513},
  };
  for (const auto& [name, image, text, total] : presets) {
    INFO(name);
    const config::Config config = config::load(preset(name));
    ClipModel model(config.model, tokenizer_for(config.model));
    const ParameterCounts counts = count_parameters(*model);
    CHECK(counts.image == image);
    CHECK(counts.text == text);
    CHECK(counts.other == 1);
    CHECK(counts.total == total);
  }
}

// The tiny presets' counts, as their YAML files state them, worked out by hand from the layout
// (W = 128, 49 patches, layers of 12 W² + 13 W, context 32, vocab 4,096, embed 128):
//   tiny         image 6,144 conv + 128 class + 6,400 pos + 256 ln_pre + 6 layers 1,189,632 +
//                256 ln_post + 16,384 proj; text 524,288 tokens + 4,096 pos + 4 layers 793,088 +
//                256 ln_final + 16,384 proj; logit_scale
//   tiny-siglip  image 6,272 conv with bias + 6,272 pos + 1,189,632 + 256 ln_post + 198,144
//                attention pool (probe, attention, LayerNorm, MLP); text as tiny with a
//                16,512 projection with bias; logit_scale and logit_bias
struct PresetCounts {
  const char* name;
  int64_t image, text, other, total;
};
constexpr PresetCounts kTinyPresets[] = {{"tiny", 1219200, 1338112, 1, 2557313},
                                         {"tiny-siglip", 1400576, 1338240, 2, 2738818}};

TEST_CASE("every preset builds with the counts its file states", "[models][clip][presets]") {
  for (const PresetCounts& want : kTinyPresets) {
    INFO(want.name);
    const config::Config config = config::load(preset(want.name));
    ClipModel model(config.model, tokenizer_for(config.model));
    const ParameterCounts counts = count_parameters(*model);
    CHECK(counts.image == want.image);
    CHECK(counts.text == want.text);
    CHECK(counts.other == want.other);
    CHECK(counts.total == want.total);
    // What `duet model summary` prints.
    const ModelSummary summary = summarize(config.model, tokenizer_for(config.model));
    CHECK(summary.parameters.image == want.image);
    CHECK(summary.parameters.text == want.text);
    CHECK(summary.parameters.total == want.total);
    model->eval();
    torch::Tensor images = torch::randn({2, 3, 28, 28});
    torch::Tensor tokens =
        torch::randint(0, config.model.text.vocab_size - 1, {2, 32}, torch::kLong);
    tokens.select(1, 31).fill_(config.model.text.vocab_size - 1);  // EOT
    CHECK(model->encode_image(images).sizes() == torch::IntArrayRef({2, config.model.embed_dim}));
    CHECK(model->encode_text(tokens).sizes() == torch::IntArrayRef({2, config.model.embed_dim}));
  }
  const config::Config siglip = config::load(preset("siglip-B-16"));
  {
    // transformers' SiglipModel(SiglipConfig()) (google/siglip-base-patch16-224's shapes) has
    // 203,155,970 parameters: image 92,884,224, text 110,271,744, logit scale and bias.
    ClipModel model(siglip.model, tokenizer_for(siglip.model));
    const ParameterCounts counts = count_parameters(*model);
    CHECK(counts.image == 92884224);
    CHECK(counts.text == 110271744);
    CHECK(counts.other == 2);
    CHECK(counts.total == 203155970);
  }
  CHECK(siglip.model.logit_bias);
  CHECK(siglip.model.vision.pool == config::VisionPool::kAttention);
  CHECK(siglip.model.text.pool == config::TextPool::kLast);
  CHECK_FALSE(siglip.model.text.causal);
  CHECK(siglip.model.text.vocab_size == 32000);
  CHECK(siglip.model.text.context_length == 64);
}

TEST_CASE("encoders return unit-norm embeddings", "[models][clip]") {
  torch::manual_seed(30);
  ClipModel model(test::tiny_config(), test::tiny_tokenizer());
  torch::Tensor image_features = model->encode_image(torch::randn({5, 3, 16, 16}));
  torch::Tensor text_features = model->encode_text(test::make_tokens({2, 3, 4, 5, 11}, 12));
  REQUIRE(image_features.sizes() == torch::IntArrayRef({5, 24}));
  REQUIRE(text_features.sizes() == torch::IntArrayRef({5, 24}));
  CHECK(max_abs_diff(image_features.norm(2, -1), torch::ones({5})) < 1e-5);
  CHECK(max_abs_diff(text_features.norm(2, -1), torch::ones({5})) < 1e-5);
}

TEST_CASE("initialisation follows OpenCLIP", "[models][clip][init]") {
  torch::manual_seed(31);
  config::ModelConfig config = test::tiny_config();
  config.vision.image_size = 32;
  config.vision.width = 256;
  config.vision.heads = 8;
  config.text.width = 256;
  config.text.heads = 8;
  config.text.context_length = 64;
  config.text.vocab_size = 1000;
  config.embed_dim = 256;
  text::TokenizerInfo tokenizer = tokenizer_for(config);
  ClipModel model(config, tokenizer);
  auto p = model->named_parameters();

  const double w = std::pow(256.0, -0.5);       // W^-0.5
  const double proj = w * std::pow(4.0, -0.5);  // W^-0.5 (2 layers)^-0.5
  const double fc = std::pow(512.0, -0.5);      // (2W)^-0.5
  // {key, expected std, relative tolerance ~ 4 / sqrt(samples)}
  const std::vector<std::tuple<std::string, double, double>> expected = {
      {"token_embedding.weight", 0.02, 0.02},
      {"positional_embedding", 0.01, 0.04},
      {"text_projection", w, 0.04},
      {"visual.class_embedding", w, 0.25},
      {"visual.positional_embedding", w, 0.04},
      {"visual.proj", w, 0.04},
  };
  for (const auto& [key, sd, tol] : expected) {
    INFO(key);
    CHECK(stddev(p[key]) == Approx(sd).epsilon(tol));
  }
  for (const std::string tower : {"visual.transformer", "transformer"}) {
    for (int layer = 0; layer < 2; ++layer) {
      const std::string block = tower + ".resblocks." + std::to_string(layer) + ".";
      INFO(block);
      CHECK(stddev(p[block + "attn.in_proj_weight"]) == Approx(w).epsilon(0.02));
      CHECK(stddev(p[block + "attn.out_proj.weight"]) == Approx(proj).epsilon(0.03));
      CHECK(stddev(p[block + "mlp.c_fc.weight"]) == Approx(fc).epsilon(0.02));
      CHECK(stddev(p[block + "mlp.c_proj.weight"]) == Approx(proj).epsilon(0.02));
      CHECK(torch::all(p[block + "attn.in_proj_bias"] == 0).item<bool>());
      CHECK(torch::all(p[block + "attn.out_proj.bias"] == 0).item<bool>());
      CHECK(torch::all(p[block + "ln_1.weight"] == 1).item<bool>());
      CHECK(torch::all(p[block + "ln_1.bias"] == 0).item<bool>());
    }
  }
  CHECK(model->logit_scale.item<double>() == Approx(std::log(1 / 0.07)));

  // The caller's seed decides the weights.
  torch::manual_seed(31);
  ClipModel same(config, tokenizer);
  torch::manual_seed(32);
  ClipModel other(config, tokenizer);
  auto q = same->named_parameters();
  auto r = other->named_parameters();
  for (const auto& item : p) {
    INFO(item.key());
    CHECK(item.value().equal(q[item.key()]));
  }
  CHECK_FALSE(p["visual.proj"].equal(r["visual.proj"]));
}

TEST_CASE("train/eval and dtype moves reach both towers", "[models][clip]") {
  ClipModel model(test::tiny_config(), test::tiny_tokenizer());
  model->eval();
  CHECK_FALSE(model->visual->is_training());
  CHECK_FALSE(model->text_tower->is_training());
  CHECK_FALSE(model->text_tower->transformer->is_training());
  model->train();
  CHECK(model->text_tower->is_training());
  model->to(torch::kDouble);
  CHECK(model->text_tower->positional_embedding.scalar_type() == torch::kDouble);
  CHECK(model->text_tower->text_projection.scalar_type() == torch::kDouble);
  CHECK(model->encode_text(test::make_tokens({4}, 12)).scalar_type() == torch::kDouble);

  model->logit_scale.data().fill_(7.0);
  model->clamp_logit_scale(std::log(100.0));
  CHECK(model->logit_scale.item<double>() == Approx(std::log(100.0)));
}

// Runs both encoders and a CLIP-style similarity objective; returns the gradients by name.
std::map<std::string, torch::Tensor> model_grads(ClipModel& model, const torch::Tensor& images,
                                                 const torch::Tensor& tokens) {
  model->zero_grad();
  torch::Tensor logits =
      torch::matmul(model->encode_image(images), model->encode_text(tokens).t()) *
      model->logit_scale.exp();
  (logits * torch::arange(logits.numel(), logits.options()).view_as(logits).sin()).sum().backward();
  std::map<std::string, torch::Tensor> grads;
  for (const auto& item : model->named_parameters()) {
    grads[item.key()] = item.value().grad().clone();
  }
  return grads;
}

void check_same_model_function(const config::ModelConfig& a, const config::ModelConfig& b) {
  torch::manual_seed(33);
  ClipModel first(a, test::tiny_tokenizer());
  ClipModel second(b, test::tiny_tokenizer());
  first->to(torch::kDouble);
  second->to(torch::kDouble);
  test::copy_parameters(*second, *first);
  torch::Tensor images = torch::randn({3, 3, 16, 16}, torch::kDouble);
  torch::Tensor tokens = test::make_tokens({2, 6, 11}, 12);
  CHECK(max_abs_diff(first->encode_image(images), second->encode_image(images)) < 1e-11);
  CHECK(max_abs_diff(first->encode_text(tokens), second->encode_text(tokens)) < 1e-11);
  auto g1 = model_grads(first, images, tokens);
  auto g2 = model_grads(second, images, tokens);
  REQUIRE(g1.size() == g2.size());
  for (const auto& [key, grad] : g1) {
    INFO(key);
    CHECK(max_abs_diff(grad, g2[key]) < 1e-11);
  }
}

TEST_CASE("whole model: grad checkpointing changes memory, not gradients", "[models][clip]") {
  config::ModelConfig plain = test::tiny_config();
  plain.attention = config::AttentionImpl::kExplicit;
  config::ModelConfig checkpointed = plain;
  checkpointed.vision.grad_checkpointing = true;
  checkpointed.text.grad_checkpointing = true;
  check_same_model_function(plain, checkpointed);
}

#if DUET_TORCH_HAS_SDPA
TEST_CASE("whole model: fused and explicit attention agree", "[models][clip]") {
  config::ModelConfig fused = test::tiny_config();
  fused.attention = config::AttentionImpl::kFused;
  config::ModelConfig plain = fused;
  plain.attention = config::AttentionImpl::kExplicit;
  plain.vision.pool = fused.vision.pool = config::VisionPool::kAttention;
  check_same_model_function(fused, plain);
}
#endif

TEST_CASE("a vocabulary mismatch is a config error with both numbers", "[models][clip]") {
  text::TokenizerInfo tokenizer = test::tiny_tokenizer();
  tokenizer.vocab_size = 32000;
  auto caught = test::catch_error([&] { ClipModel(test::tiny_config(), tokenizer); });
  REQUIRE(caught.thrown);
  CHECK(caught.kind == ErrorKind::kConfig);
  CHECK_THAT(caught.message,
             Catch::Contains("model.text.vocab_size (50)") && Catch::Contains("(32000)"));
}

// Runs `duet ARGS` and returns {exit code, stdout (+ stderr when merge_stderr)}.
std::pair<int, std::string> run_duet(const std::string& args, bool merge_stderr = false) {
  const std::string command =
      std::string("\"") + DUET_BINARY + "\" " + args + (merge_stderr ? " 2>&1" : " 2>/dev/null");
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string output;
  std::array<char, 4096> buffer{};
  size_t n = 0;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
    output.append(buffer.data(), n);
  }
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

TEST_CASE("duet model summary prints the counts of the model it builds", "[models][cli]") {
  {
    const auto [code, output] = run_duet("model summary -c \"" + preset("tiny") + "\" --json");
    REQUIRE(code == 0);
    const nlohmann::json summary = nlohmann::json::parse(output);
    const PresetCounts& tiny = kTinyPresets[0];
    CHECK(summary.at("image_params").get<int64_t>() == tiny.image);
    CHECK(summary.at("text_params").get<int64_t>() == tiny.text);
    CHECK(summary.at("total_params").get<int64_t>() == tiny.total);
    CHECK(summary.at("vision").at("image_size").get<int64_t>() == 28);
    CHECK(summary.at("vision").at("pool").get<std::string>() == "class");
    CHECK(summary.at("text").at("context_length").get<int64_t>() == 32);
    CHECK_FALSE(summary.at("logit_bias").get<bool>());
  }
  // The plain-text form, with --set applied (SigLIP's layout has no image projection, so the
  // image width follows the embedding).
  const std::vector<std::string> overrides = {"model.vision.layers=2", "model.embed_dim=64",
                                              "model.vision.width=64"};
  const auto [code, output] =
      run_duet("model summary -c \"" + preset("tiny-siglip") + "\" --set " + overrides[0] +
               " --set " + overrides[1] + " --set " + overrides[2]);
  REQUIRE(code == 0);
  // Worked out as for kTinyPresets with W = 64 and 2 layers in the image tower (3,136 conv,
  // 3,136 pos, 99,968 layers, 128 ln_post, 49,920 attention pool) and a 64-wide text projection
  // with bias (8,256); logit_scale and logit_bias make the total.
  CHECK_THAT(output, Catch::Contains("embed_dim 64") && Catch::Contains("2 layers") &&
                         Catch::Contains("pool attention") && Catch::Contains("bidirectional") &&
                         Catch::Contains("logit_bias: init -10") &&
                         Catch::Contains("parameters: 156,288\n") &&
                         Catch::Contains("parameters: 1,329,984\n") &&
                         Catch::Contains("total parameters: 1,486,274"));
}

TEST_CASE("duet model summary exits 2 on a bad config", "[models][cli]") {
  const auto [code, output] =
      run_duet("model summary -c \"" + preset("tiny") + "\" --set model.vision.heads=7", true);
  CHECK(code == 2);
  CHECK_THAT(output, Catch::Contains("model.vision.heads"));
}

}  // namespace
}  // namespace duet::models
