// `duet model summary`: the architecture a config describes and its parameter counts per tower.
// It builds the model for real (so the counts are the model's, not a formula's) but needs no
// tokenizer file: the vocabulary comes from model.text.vocab_size, with the last id as EOT.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/app.h"
#include "config/loader.h"
#include "models/model_summary.h"

namespace duet::cli {
namespace {

// 151277313 -> "151,277,313"
std::string with_commas(int64_t n) {
  std::string digits = std::to_string(n);
  for (auto i = static_cast<int64_t>(digits.size()) - 3; i > 0; i -= 3) {
    digits.insert(static_cast<size_t>(i), ",");
  }
  return digits;
}

nlohmann::json summary_json(const config::ModelConfig& m, const models::ModelSummary& s) {
  const auto& v = m.vision;
  const auto& t = m.text;
  const int64_t grid = v.image_size / v.patch_size;
  nlohmann::json vision = {{"image_size", v.image_size},
                           {"patch_size", v.patch_size},
                           {"grid", grid},
                           {"tokens", (v.class_token ? 1 : 0) + grid * grid},
                           {"class_token", v.class_token},
                           {"patch_bias", v.patch_bias},
                           {"ln_pre", v.ln_pre},
                           {"proj", v.proj},
                           {"width", v.width},
                           {"layers", v.layers},
                           {"heads", v.heads},
                           {"mlp_width", s.vision_mlp_width},
                           {"act", config::name(v.act)},
                           {"pool", config::name(v.pool)},
                           {"patch_dropout", v.patch_dropout},
                           {"ls_init", v.ls_init},
                           {"grad_checkpointing", v.grad_checkpointing},
                           {"params", s.parameters.image}};
  nlohmann::json text = {{"context_length", t.context_length},
                         {"vocab_size", t.vocab_size},
                         {"width", t.width},
                         {"layers", t.layers},
                         {"heads", t.heads},
                         {"mlp_width", s.text_mlp_width},
                         {"act", config::name(t.act)},
                         {"causal", t.causal},
                         {"pool", config::name(t.pool)},
                         {"proj_bias", t.proj_bias},
                         {"ls_init", t.ls_init},
                         {"grad_checkpointing", t.grad_checkpointing},
                         {"params", s.parameters.text}};
  nlohmann::json out = {{"name", m.name},
                        {"embed_dim", m.embed_dim},
                        {"attention", s.attention},
                        {"vision", vision},
                        {"text", text},
                        {"init_logit_scale", m.init_logit_scale},
                        {"logit_bias", m.logit_bias},
                        {"image_params", s.parameters.image},
                        {"text_params", s.parameters.text},
                        {"other_params", s.parameters.other},
                        {"total_params", s.parameters.total}};
  if (m.logit_bias) {
    out["init_logit_bias"] = m.init_logit_bias;
  }
  return out;
}

std::string summary_text(const config::ModelConfig& m, const models::ModelSummary& s) {
  const auto& v = m.vision;
  const auto& t = m.text;
  const int64_t grid = v.image_size / v.patch_size;
  const auto on_off = [](bool on) { return on ? "on" : "off"; };
  std::string out = fmt::format("model {}: embed_dim {}, attention {}\n",
                                m.name.empty() ? "(unnamed)" : m.name, m.embed_dim, s.attention);
  out += fmt::format(
      "image tower: {0} px, patch {1} ({2}x{2} grid, {3} tokens), width {4}, {5} layers, "
      "{6} heads, mlp {7} ({8}), pool {9}, patch_dropout {10}, layer scale {11}, "
      "grad checkpointing {12}\n  layout: class token {13}, patch bias {14}, ln_pre {15}, "
      "proj {16}\n",
      v.image_size, v.patch_size, grid, (v.class_token ? 1 : 0) + grid * grid, v.width, v.layers,
      v.heads, s.vision_mlp_width, v.act, v.pool, v.patch_dropout,
      v.ls_init > 0.0 ? fmt::format("{}", v.ls_init) : "off", on_off(v.grad_checkpointing),
      on_off(v.class_token), on_off(v.patch_bias), on_off(v.ln_pre), on_off(v.proj));
  out += fmt::format("  parameters: {}\n", with_commas(s.parameters.image));
  out += fmt::format(
      "text tower: context {}, vocab {}, width {}, {} layers, {} heads, mlp {} ({}), {}, pool {}, "
      "proj bias {}, layer scale {}, grad checkpointing {}\n",
      t.context_length, t.vocab_size, t.width, t.layers, t.heads, s.text_mlp_width, t.act,
      t.causal ? "causal" : "bidirectional", t.pool, on_off(t.proj_bias),
      t.ls_init > 0.0 ? fmt::format("{}", t.ls_init) : "off", on_off(t.grad_checkpointing));
  out += fmt::format("  parameters: {}\n", with_commas(s.parameters.text));
  out += fmt::format("logit_scale: init {:.6g} (temperature {:.4g})", m.init_logit_scale,
                     std::exp(-m.init_logit_scale));
  out += m.logit_bias ? fmt::format(", logit_bias: init {:.6g}\n", m.init_logit_bias)
                      : std::string(", logit_bias: off\n");
  out += fmt::format("total parameters: {}\n", with_commas(s.parameters.total));
  return out;
}

}  // namespace

void add_model_command(CLI::App& root, Registry& registry) {
  CLI::App* model = root.add_subcommand("model", "Inspect model architectures");
  model->require_subcommand(1);

  struct SummaryOptions {
    std::string file;
    std::vector<std::string> overrides;
    bool json = false;
  };
  auto options = std::make_shared<SummaryOptions>();
  CLI::App* summary = model->add_subcommand(
      "summary", "Print the architecture and the parameter counts per tower of a config's model");
  summary->add_option("-c,--config", options->file, "Config file (a preset or a run)")->required();
  summary->add_option("--set", options->overrides, "Override a key: KEY=VALUE (repeatable)")
      ->type_name("KEY=VALUE");
  summary->add_flag("--json", options->json,
                    "Print one JSON object (image_params, text_params, total_params, ...)");
  registry.add(summary, [options] {
    const config::Config cfg = load_config(options->file, options->overrides);
    // No tokenizer is loaded: the summary only needs the vocabulary size and a valid EOT id.
    text::TokenizerInfo tokenizer;
    tokenizer.vocab_size = cfg.model.text.vocab_size;
    tokenizer.eot_id = cfg.model.text.vocab_size - 1;
    const models::ModelSummary s = models::summarize(cfg.model, tokenizer);
    if (options->json) {
      std::cout << summary_json(cfg.model, s).dump() << "\n";
    } else {
      std::cout << summary_text(cfg.model, s);
    }
  });
}

}  // namespace duet::cli
