// Key maps and weight round trips: every parameter has exactly one rule in each format; export ->
// import gives bit-identical parameters and embeddings; transformers' names and shapes; models a
// format cannot hold are refused with reasons; mismatched sources list every offending key;
// lock_image freezes the image tower and the optimiser leaves it out.
#include <torch/torch.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/test_util.h"
#include "export/key_map.h"
#include "export/model_io.h"
#include "export/safetensors.h"
#include "export/state_dict.h"
#include "models/clip_model.h"
#include "models/model_test_util.h"
#include "text/tokenizer.h"
#include "train/checkpoint.h"
#include "train/optimizer.h"

namespace duet::export_ {
namespace {

using models::ClipModel;

// The tiny CLIP of the model tests (class token, causal text pooled at EOT 49).
config::Config clip_config() {
  config::Config c;
  c.model = models::test::tiny_config();
  return c;
}

// The same in SigLIP's layout (what transformers' SiglipModel holds).
config::Config siglip_config() {
  config::Config c = clip_config();
  auto& m = c.model;
  m.embed_dim = 32;  // the image embedding is the pooled width
  m.logit_bias = true;
  m.init_logit_scale = std::log(10.0);
  m.vision.pool = config::VisionPool::kAttention;
  m.vision.class_token = false;
  m.vision.patch_bias = true;
  m.vision.ln_pre = false;
  m.vision.proj = false;
  m.vision.act = m.text.act = config::Activation::kGeluTanh;
  m.text.causal = false;
  m.text.pool = config::TextPool::kLast;
  m.text.proj_bias = true;
  return c;
}

ClipModel build(const config::ModelConfig& config, uint64_t seed) {
  torch::manual_seed(seed);
  ClipModel model(config, models::test::tiny_tokenizer());
  // Random non-zero biases and gains so that a swapped or dropped tensor shows.
  torch::NoGradGuard no_grad;
  for (auto& p : model->parameters()) {
    p.add_(torch::randn_like(p) * 0.05);
  }
  model->eval();
  return model;
}

std::vector<std::string> names_of(const ClipModel& model) {
  std::vector<std::string> names;
  for (const auto& item : model->named_parameters()) {
    names.push_back(item.key());
  }
  return names;
}

void check_identical(ClipModel a, ClipModel b) {
  const auto pb = b->named_parameters();
  for (const auto& item : a->named_parameters()) {
    INFO(item.key());
    CHECK(item.value().equal(pb[item.key()]));
  }
  torch::manual_seed(5);
  const torch::Tensor images = torch::randn({3, 3, 16, 16});
  const torch::Tensor tokens = models::test::make_tokens({3, 6, 11}, 12);
  CHECK(a->encode_image(images).equal(b->encode_image(images)));
  CHECK(a->encode_text(tokens).equal(b->encode_text(tokens)));
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST_CASE("each key map covers every parameter exactly once, targets unique", "[export][keymap]") {
  for (const auto& [label, config, formats] :
       std::vector<std::tuple<std::string, config::Config, std::vector<Format>>>{
           {"clip", clip_config(), {Format::kDuet, Format::kOpenClip, Format::kHf}},
           {"siglip", siglip_config(), {Format::kDuet, Format::kHf}}}) {
    const ClipModel model = build(config.model, 1);
    const auto params = model->named_parameters();
    for (const Format format : formats) {
      INFO(label << " " << format_name(format));
      REQUIRE(unsupported(config.model, format, models::test::tiny_tokenizer()).empty());
      const std::vector<KeyRule> rules = key_map(names_of(model), format, config.model);
      std::multiset<std::string> duet;
      std::multiset<std::string> targets;
      int64_t values = 0;
      for (const auto& rule : rules) {
        duet.insert(rule.duet);
        for (const auto& t : rule.targets) {
          targets.insert(t);
        }
        CHECK(rule.targets.size() == (rule.transform == Transform::kSplit3 ? 3u : 1u));
      }
      for (const auto& item : params) {
        CHECK(duet.count(item.key()) == 1);
        values += item.value().numel();
      }
      CHECK(duet.size() == params.size());
      CHECK(std::set<std::string>(targets.begin(), targets.end()).size() == targets.size());
      // The exported tensors hold every value once (splits and transposes included).
      int64_t exported = 0;
      for (const auto& [name, t] : export_tensors(*model, format, torch::kFloat)) {
        exported += t.numel();
      }
      CHECK(exported == values);
    }
  }
}

TEST_CASE("transformers names and shapes follow CLIPModel and SiglipModel", "[export][keymap]") {
  {
    const config::Config config = clip_config();
    const ClipModel model = build(config.model, 2);
    std::map<std::string, std::vector<int64_t>> shapes;
    for (const auto& [name, t] : export_tensors(*model, Format::kHf, torch::kFloat)) {
      shapes[name] = t.sizes().vec();
    }
    // W 32, E 24, grid 4x4 + class token, context 12, vocab 50, MLP 128.
    const std::map<std::string, std::vector<int64_t>> expected = {
        {"vision_model.embeddings.class_embedding", {32}},
        {"vision_model.embeddings.patch_embedding.weight", {32, 3, 4, 4}},
        {"vision_model.embeddings.position_embedding.weight", {17, 32}},
        {"vision_model.pre_layrnorm.weight", {32}},
        {"vision_model.encoder.layers.0.self_attn.q_proj.weight", {32, 32}},
        {"vision_model.encoder.layers.1.self_attn.v_proj.bias", {32}},
        {"vision_model.encoder.layers.1.self_attn.out_proj.weight", {32, 32}},
        {"vision_model.encoder.layers.0.layer_norm1.bias", {32}},
        {"vision_model.encoder.layers.0.mlp.fc1.weight", {128, 32}},
        {"vision_model.encoder.layers.0.mlp.fc2.weight", {32, 128}},
        {"vision_model.post_layernorm.bias", {32}},
        {"visual_projection.weight", {24, 32}},
        {"text_model.embeddings.token_embedding.weight", {50, 32}},
        {"text_model.embeddings.position_embedding.weight", {12, 32}},
        {"text_model.encoder.layers.1.self_attn.k_proj.weight", {32, 32}},
        {"text_model.final_layer_norm.weight", {32}},
        {"text_projection.weight", {24, 32}},
        {"logit_scale", {}},
    };
    for (const auto& [name, shape] : expected) {
      INFO(name);
      REQUIRE(shapes.count(name) == 1);
      CHECK(shapes[name] == shape);
    }
    // Vision embeddings (3) + pre_layrnorm (2), 2 towers x 2 layers x 16 tensors, post_layernorm
    // (2), visual_projection, text embeddings (2), final_layer_norm (2), text_projection,
    // logit_scale.
    CHECK(shapes.size() == 5 + 64 + 2 + 1 + 2 + 2 + 1 + 1);
    // The packed in-projection splits in q, k, v order; projections are transposed.
    const auto hf = export_tensors(*model, Format::kHf, torch::kFloat);
    std::map<std::string, torch::Tensor> by_name(hf.begin(), hf.end());
    const torch::Tensor in_proj =
        model->named_parameters()["visual.transformer.resblocks.0.attn.in_proj_weight"];
    CHECK(by_name["vision_model.encoder.layers.0.self_attn.k_proj.weight"].equal(
        in_proj.narrow(0, 32, 32)));
    CHECK(by_name["visual_projection.weight"].equal(model->visual->proj.t()));
  }
  {
    const config::Config config = siglip_config();
    const ClipModel model = build(config.model, 3);
    std::map<std::string, std::vector<int64_t>> shapes;
    for (const auto& [name, t] : export_tensors(*model, Format::kHf, torch::kFloat)) {
      shapes[name] = t.sizes().vec();
    }
    const std::map<std::string, std::vector<int64_t>> expected = {
        {"vision_model.embeddings.patch_embedding.bias", {32}},
        {"vision_model.embeddings.position_embedding.weight", {16, 32}},
        {"vision_model.head.probe", {1, 1, 32}},
        {"vision_model.head.attention.in_proj_weight", {96, 32}},
        {"vision_model.head.attention.out_proj.bias", {32}},
        {"vision_model.head.layernorm.weight", {32}},
        {"vision_model.head.mlp.fc1.weight", {128, 32}},
        {"text_model.head.weight", {32, 32}},
        {"text_model.head.bias", {32}},
        {"logit_scale", {1}},
        {"logit_bias", {1}},
    };
    for (const auto& [name, shape] : expected) {
      INFO(name);
      REQUIRE(shapes.count(name) == 1);
      CHECK(shapes[name] == shape);
    }
    CHECK(shapes.count("vision_model.embeddings.class_embedding") == 0);
    CHECK(shapes.count("vision_model.pre_layrnorm.weight") == 0);
    CHECK(shapes.count("visual_projection.weight") == 0);
  }
}

TEST_CASE("formats refuse what they cannot hold, naming the config keys", "[export][keymap]") {
  const text::TokenizerInfo tok = models::test::tiny_tokenizer();
  auto reasons = [&](const config::ModelConfig& m, Format f) {
    std::string all;
    for (const auto& r : unsupported(m, f, tok)) {
      all += r + "\n";
    }
    return all;
  };
  config::ModelConfig m = clip_config().model;
  m.vision.ls_init = 0.1;
  CHECK_THAT(reasons(m, Format::kHf), Catch::Contains("LayerScale"));
  CHECK(reasons(m, Format::kOpenClip).empty());  // OpenCLIP has LayerScale

  m = clip_config().model;
  m.vision.pool = config::VisionPool::kMean;
  CHECK_THAT(reasons(m, Format::kHf), Catch::Contains("model.vision.pool 'mean'"));
  CHECK(reasons(m, Format::kOpenClip).empty());  // OpenCLIP's avg pooling

  m = siglip_config().model;
  CHECK_THAT(reasons(m, Format::kOpenClip), Catch::Contains("model.vision.class_token") &&
                                                Catch::Contains("patch_bias") &&
                                                Catch::Contains("model.vision.pool 'attention'"));
  m.vision.class_token = true;
  m.vision.ln_pre = true;
  CHECK_THAT(reasons(m, Format::kHf), Catch::Contains("SiglipModel has no class token") &&
                                          Catch::Contains("no pre-LayerNorm"));
  m = clip_config().model;
  m.text.causal = false;
  m.text.pool = config::TextPool::kLast;
  CHECK_THAT(reasons(m, Format::kHf), Catch::Contains("model.text.causal"));
  text::TokenizerInfo eot2 = tok;
  eot2.eot_id = 2;
  CHECK_THAT(unsupported(clip_config().model, Format::kHf, eot2).at(0),
             Catch::Contains("end-of-text id is 2"));
  CHECK(unsupported(m, Format::kDuet, tok).empty());
}

TEST_CASE("export -> import round trips are bit-identical in every format", "[export][io]") {
  test::TempDir dir;
  for (const auto& [label, config, formats] :
       std::vector<std::tuple<std::string, config::Config, std::vector<Format>>>{
           {"clip", clip_config(), {Format::kDuet, Format::kOpenClip, Format::kHf}},
           {"siglip", siglip_config(), {Format::kDuet, Format::kHf}}}) {
    const ClipModel source = build(config.model, 10);
    for (const Format format : formats) {
      INFO(label << " " << format_name(format));
      // Through files: the tensors a format writes, read back and mapped to duet's names.
      const std::string path = dir / (label + "-" + format_name(format) + ".safetensors");
      write_tensors(path, export_tensors(*source, format, torch::kFloat), {{"format", "pt"}});
      ClipModel target = build(config.model, 11);
      import_tensors(*target, read_tensors(SafetensorsFile(path)), format, path);
      check_identical(source, target);
      // load_weights finds the layout from the names alone.
      ClipModel guessed = build(config.model, 12);
      load_weights(*guessed, path);
      check_identical(source, guessed);
    }
  }
}

TEST_CASE("float16 and bfloat16 exports hold the rounded parameters", "[export][io]") {
  const config::Config config = clip_config();
  const ClipModel source = build(config.model, 13);
  for (const auto dtype : {torch::kHalf, torch::kBFloat16}) {
    const auto tensors = export_tensors(*source, Format::kHf, dtype);
    for (const auto& [name, t] : tensors) {
      CHECK(t.scalar_type() == dtype);
    }
    ClipModel target = build(config.model, 14);
    TensorMap map(tensors.begin(), tensors.end());
    import_tensors(*target, map, Format::kHf, "mem");
    CHECK(target->visual->proj.equal(source->visual->proj.to(dtype).to(torch::kFloat)));
  }
}

TEST_CASE("a mismatched source lists every offending key and changes nothing", "[export][io]") {
  const config::Config config = clip_config();
  const ClipModel source = build(config.model, 20);
  auto tensors_of = [&](Format f) {
    const auto named = export_tensors(*source, f, torch::kFloat);
    return TensorMap(named.begin(), named.end());
  };
  ClipModel target = build(config.model, 21);
  const torch::Tensor before = target->visual->proj.clone();

  TensorMap broken = tensors_of(Format::kHf);
  broken.erase("vision_model.encoder.layers.1.self_attn.q_proj.weight");
  broken.erase("text_projection.weight");
  broken["vision_model.embeddings.position_embedding.weight"] = torch::zeros({10, 32});
  broken["extra.weight"] = torch::zeros({3});
  broken["text_model.embeddings.position_ids"] = torch::arange(12);  // ignored, not reported
  const std::string message =
      error_of([&] { import_tensors(*target, broken, Format::kHf, "src"); });
  CHECK_THAT(message, Catch::Contains("'src' does not fit this model (hf format, 4 problems)"));
  CHECK_THAT(message,
             Catch::Contains("missing 'vision_model.encoder.layers.1.self_attn.q_proj.weight'"));
  CHECK_THAT(message, Catch::Contains("missing 'text_projection.weight'"));
  CHECK_THAT(message, Catch::Contains(
                          "'vision_model.embeddings.position_embedding.weight' has shape [10, 32], "
                          "expected [17, 32]"));
  CHECK_THAT(message, Catch::Contains("unexpected 'extra.weight' [3]"));
  CHECK_FALSE(message.find("position_ids") != std::string::npos);
  CHECK(target->visual->proj.equal(before));  // nothing copied

  // A wider model: every shape is reported.
  config::ModelConfig wide = config.model;
  wide.text.width = 48;
  wide.text.heads = 4;
  ClipModel wider = build(wide, 22);
  const std::string shapes =
      error_of([&] { import_tensors(*wider, tensors_of(Format::kDuet), Format::kDuet, "src"); });
  CHECK_THAT(shapes, Catch::Contains("'token_embedding.weight' has shape [50, 32], expected [50, "
                                     "48]") &&
                         Catch::Contains("'transformer.resblocks.1.mlp.c_fc.weight'"));
}

TEST_CASE("load_weights reads duet checkpoints and export directories, and rejects others",
          "[export][io]") {
  test::TempDir dir;
  const config::Config config = clip_config();
  const ClipModel source = build(config.model, 30);

  // A checkpoint directory as the trainer writes it (train/checkpoint.h).
  train::CheckpointStore store(dir / "checkpoints", 1);
  const std::string checkpoint =
      train::save_checkpoint(store, 1, "", *source, *train::make_adamw(*source, config.optim),
                             {train::capture_rank_state("{}", torch::kCPU)});
  ClipModel from_checkpoint = build(config.model, 31);
  load_weights(*from_checkpoint, checkpoint);
  check_identical(source, from_checkpoint);

  // Export directories.
  for (const Format format : {Format::kHf, Format::kOpenClip}) {
    INFO(format_name(format));
    const std::string out = dir / format_name(format);
    std::filesystem::create_directories(out);
    const bool hf = format == Format::kHf;
    write_tensors(out + (hf ? "/model.safetensors" : "/open_clip_model.safetensors"),
                  export_tensors(*source, format, torch::kFloat), {{"format", "pt"}});
    if (hf) {
      test::write_file(out + "/config.json",
                       R"({"model_type": "clip", "text_config": {"hidden_act": "gelu"},
                           "vision_config": {"hidden_act": "gelu"}})");
    } else {
      test::write_file(out + "/open_clip_config.json", R"({"model_cfg": {"quick_gelu": false}})");
    }
    ClipModel target = build(config.model, 32);
    load_weights(*target, out);
    check_identical(source, target);
  }

  // A transformers directory built with another activation is refused before any weight moves.
  test::write_file(dir / "hf/config.json", R"({"model_type": "clip"})");  // default: quick_gelu
  ClipModel target = build(config.model, 33);
  CHECK_THAT(error_of([&] { load_weights(*target, dir / "hf"); }),
             Catch::Contains("text_config.hidden_act: the source has \"quick_gelu\", duet's config "
                             "\"gelu\""));
  test::write_file(dir / "hf/config.json", "[1, 2]");
  CHECK_THAT(error_of([&] { load_weights(*target, dir / "hf"); }),
             Catch::Contains("config.json' must be a JSON object"));
  test::write_file(dir / "hf/config.json", R"({"model_type": 5})");
  CHECK_THAT(error_of([&] { load_weights(*target, dir / "hf"); }),
             Catch::Contains("config.json' has a field of the wrong type"));
  test::write_file(dir / "hf/config.json", "{");
  CHECK_THAT(error_of([&] { load_weights(*target, dir / "hf"); }),
             Catch::Contains("is not valid JSON"));
  test::write_file(dir / "hf/config.json", R"({"model_type": "siglip"})");
  CHECK_THAT(error_of([&] { load_weights(*target, dir / "hf"); }),
             Catch::Contains("model_type 'siglip'"));

  CHECK_THAT(error_of([&] { load_weights(*target, dir / "nothing-here"); }),
             Catch::Contains("does not exist"));
  std::filesystem::create_directories(dir / "empty");
  CHECK_THAT(error_of([&] { load_weights(*target, dir / "empty"); }),
             Catch::Contains("is neither a duet checkpoint"));
  test::write_file(dir / "junk.safetensors", "not a safetensors file");
  CHECK_THAT(error_of([&] { load_weights(*target, dir / "junk.safetensors"); }),
             Catch::Contains("junk.safetensors"));
}

TEST_CASE("lock_image freezes the image tower, and the optimiser leaves it out", "[export][lit]") {
  config::Config config = clip_config();
  config.model.lock_image = true;
  ClipModel model = build(config.model, 40);
  prepare_model(*model, config.model);
  int64_t trainable = 0;
  for (const auto& item : model->named_parameters()) {
    INFO(item.key());
    const bool image = item.key().rfind("visual.", 0) == 0;
    CHECK(item.value().requires_grad() == !image);
    trainable += image ? 0 : 1;
  }
  const auto optimizer = train::make_adamw(*model, config.optim);
  int64_t in_optimizer = 0;
  for (const auto& group : optimizer->groups()) {
    in_optimizer += static_cast<int64_t>(group.parameters.size());
  }
  CHECK(in_optimizer == trainable);

  // A step changes the text tower and leaves the image tower bit-identical.
  const torch::Tensor proj = model->visual->proj.clone();
  const torch::Tensor text_proj = model->text_tower->text_projection.clone();
  model->train();
  const torch::Tensor loss = (model->encode_image(torch::randn({2, 3, 16, 16})) *
                              model->encode_text(models::test::make_tokens({3, 5}, 12)))
                                 .sum();
  loss.backward();
  optimizer->step();
  CHECK(model->visual->proj.equal(proj));
  CHECK_FALSE(model->text_tower->text_projection.equal(text_proj));

  // init_from loads before locking.
  test::TempDir dir;
  const ClipModel source = build(config.model, 41);
  write_tensors(dir / "w.safetensors", export_tensors(*source, Format::kDuet, torch::kFloat), {});
  config.model.init_from = dir / "w.safetensors";
  ClipModel initialised = build(config.model, 42);
  prepare_model(*initialised, config.model);
  CHECK(initialised->visual->proj.equal(source->visual->proj));
  CHECK_FALSE(initialised->visual->proj.requires_grad());
}

}  // namespace
}  // namespace duet::export_
