// `duet config show` on malformed configs: every class of config error exits 2 with a message
// naming the key path, where it was set (file:line or the --set) and the offending value.
#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

#include "common/test_util.h"

namespace {

using duet::test::run_duet;
using duet::test::TempDir;
using duet::test::write_file;

struct Malformed {
  std::string name;
  std::map<std::string, std::string> files;  // run.yaml is the config passed with -c
  std::vector<std::string> overrides;        // --set arguments
  std::vector<std::string> expected;         // substrings of stderr
};

// Nine levels of ten aliases each: 10^9 keys if expanded.
std::string billion_laughs() {
  std::string text =
      "l0: &l0 {k0: 1, k1: 1, k2: 1, k3: 1, k4: 1, k5: 1, k6: 1, k7: 1, k8: 1, k9: 1}\n";
  for (int level = 1; level <= 9; ++level) {
    text += "l" + std::to_string(level) + ": &l" + std::to_string(level) + " {";
    for (int k = 0; k < 10; ++k) {
      text += (k ? ", k" : "k") + std::to_string(k) + ": *l" + std::to_string(level - 1);
    }
    text += "}\n";
  }
  return text;
}

const std::vector<Malformed>& malformed_configs() {
  static const std::vector<Malformed> cases = {
      {"unknown top-level key",
       {{"run.yaml", "modle:\n  embed_dim: 64\n"}},
       {},
       {"run.yaml:2", "unknown key 'modle.embed_dim'", "did you mean 'model.embed_dim'?"}},
      {"unknown key at depth",
       {{"run.yaml", "model:\n  vision:\n    layers: 2\n    widht: 64\n"}},
       {},
       {"run.yaml:4", "unknown key 'model.vision.widht'", "did you mean 'model.vision.width'?"}},
      {"dotted unknown key",
       {{"run.yaml", "optim.learning_rate: 0.1\n"}},
       {},
       {"run.yaml:1", "unknown key 'optim.learning_rate'"}},
      {"string for integer",
       {{"run.yaml", "train:\n  batch_size: many\n"}},
       {},
       {"run.yaml:2", "train.batch_size: expected an integer, got 'many'"}},
      {"fraction for integer",
       {{"run.yaml", "train:\n  batch_size: 1.5\n"}},
       {},
       {"run.yaml:2", "train.batch_size: expected an integer, got '1.5'"}},
      {"bad bool",
       {{"run.yaml", "data:\n  hflip: maybe\n"}},
       {},
       {"run.yaml:2", "data.hflip: expected true or false, got 'maybe'"}},
      {"scalar for list",
       {{"run.yaml", "data:\n  mean: 0.5\n"}},
       {},
       {"run.yaml:2", "data.mean: expected a list, got '0.5'"}},
      {"bad list element",
       {{"run.yaml", "data:\n  mean: [0.1, x, 0.3]\n"}},
       {},
       {"run.yaml:2", "data.mean: element 1: expected a finite number, got 'x'"}},
      {"mapping for number",
       {{"run.yaml", "optim:\n  lr: {a: 1}\n"}},
       {},
       {"run.yaml:2", "optim.lr: expected a number, got a mapping (with key 'a')"}},
      {"not a number",
       {{"run.yaml", "optim:\n  lr: .nan\n"}},
       {},
       {"optim.lr: expected a finite number, got '.nan'"}},
      {"scalar for section",
       {{"run.yaml", "model: 3\n"}},
       {},
       {"run.yaml:1", "model: expected a mapping (section 'model'), got '3'"}},
      {"zero learning rate",
       {{"run.yaml", "optim:\n  lr: 0\n"}},
       {},
       {"run.yaml:2", "optim.lr: must be > 0, got 0"}},
      {"beta out of range",
       {{"run.yaml", "optim:\n  beta2: 1.0\n"}},
       {},
       {"run.yaml:2", "optim.beta2: must be in [0, 1), got 1"}},
      {"negative embed_dim",
       {{"run.yaml", "model:\n  embed_dim: -4\n"}},
       {},
       {"run.yaml:2", "model.embed_dim: must be > 0, got -4"}},
      {"unknown choice",
       {{"run.yaml", "loss:\n  type: infonce\n"}},
       {},
       {"run.yaml:2", "loss.type: must be one of: clip, siglip, got 'infonce'"}},
      {"choice typo",
       {{"run.yaml", "train:\n  precision: bf61\n"}},
       {},
       {"train.precision", "did you mean 'bf16'?"}},
      {"width not divisible by heads",
       {{"run.yaml", "model:\n  vision:\n    width: 100\n    heads: 3\n"}},
       {},
       {"run.yaml:4", "model.vision.width (100) must be divisible by model.vision.heads (3)"}},
      {"image size not divisible by patch",
       {{"run.yaml", "model:\n  vision:\n    image_size: 30\n    patch_size: 4\n"}},
       {},
       {"model.vision.image_size (30) must be divisible by model.vision.patch_size (4)"}},
      {"batch not divisible by accumulation",
       {{"run.yaml", "train:\n  batch_size: 10\n  accum_steps: 3\n"}},
       {},
       {"run.yaml:3", "train.batch_size (10) must be divisible by train.accum_steps (3)"}},
      {"steps and epochs",
       {{"run.yaml", "train:\n  steps: 10\n  epochs: 2\n"}},
       {},
       {"set exactly one of train.steps (10) and train.epochs (2)"}},
      {"warmup longer than training",
       {{"run.yaml", "train:\n  steps: 100\nschedule:\n  warmup_steps: 100\n"}},
       {},
       {"run.yaml:4", "schedule.warmup_steps (100) must be less than train.steps (100)"}},
      {"siglip without bias",
       {{"run.yaml", "loss:\n  type: siglip\n"}},
       {},
       {"loss.type 'siglip' needs model.logit_bias: true"}},
      {"class pooling without a class token",
       {{"run.yaml", "model:\n  vision:\n    class_token: false\n"}},
       {},
       {"model.vision.pool 'class' needs model.vision.class_token: true"}},
      {"no image projection with width != embed_dim",
       {{"run.yaml", "model:\n  embed_dim: 512\n  vision:\n    width: 768\n    proj: false\n"}},
       {},
       {"run.yaml:5",
        "model.vision.proj: false needs model.vision.width (768) to equal model.embed_dim (512)"}},
      {"reversed crop range",
       {{"run.yaml", "data:\n  rrc_scale: [1.0, 0.5]\n"}},
       {},
       {"data.rrc_scale ([1, 0.5]) must be two numbers"}},
      {"partial zero-shot",
       {{"run.yaml", "eval:\n  zero_shot:\n    source: test.tar\n"}},
       {},
       {"eval.zero_shot needs all of source, classnames and templates"}},
      {"missing include",
       {{"run.yaml", "include: nope.yaml\n"}},
       {},
       {"run.yaml:1", "include 'nope.yaml' not found"}},
      {"include cycle",
       {{"run.yaml", "include: a.yaml\n"},
        {"a.yaml", "include: b.yaml\n"},
        {"b.yaml", "train:\n  seed: 1\ninclude: a.yaml\n"}},
       {},
       {"b.yaml:3: include cycle:", "a.yaml -> ", "b.yaml -> "}},
      {"include of a mapping",
       {{"run.yaml", "include: {a: 1}\n"}},
       {},
       {"run.yaml:1", "include: expected a file name or a list of file names"}},
      {"unknown key in an included file",
       {{"run.yaml", "include: base.yaml\ntrain:\n  seed: 1\n"},
        {"base.yaml", "train:\n  sede: 3\n"}},
       {},
       {"base.yaml:2", "unknown key 'train.sede'", "did you mean 'train.seed'?"}},
      {"YAML syntax error",
       {{"run.yaml", "model:\n  embed_dim: [1, 2\n"}},
       {},
       {"run.yaml:", "YAML syntax error"}},
      {"top level is a list",
       {{"run.yaml", "- model\n- train\n"}},
       {},
       {"top level of a config must be a mapping"}},
      {"--set without =",
       {{"run.yaml", "{}\n"}},
       {"optim.lr"},
       {"--set optim.lr: expected KEY=VALUE"}},
      {"--set unknown key",
       {{"run.yaml", "{}\n"}},
       {"optim.lrr=0.1"},
       {"--set optim.lrr=0.1: unknown key 'optim.lrr'", "did you mean 'optim.lr'?"}},
      {"--set wrong type",
       {{"run.yaml", "{}\n"}},
       {"train.seed=abc"},
       {"--set train.seed=abc: train.seed: expected an integer, got 'abc'"}},
      {"--set bad key path",
       {{"run.yaml", "{}\n"}},
       {"optim..lr=1"},
       {"'optim..lr' is not a key path"}},
      {"--set include",
       {{"run.yaml", "{}\n"}},
       {"include=x.yaml"},
       {"includes belong in config files"}},
      {"--set unparsable value",
       {{"run.yaml", "{}\n"}},
       {"data.mean=[1,2"},
       {"--set data.mean=[1,2: the value '[1,2' is not valid YAML"}},
      {"--set unparsable string",
       {{"run.yaml", "{}\n"}},
       {"model.name=a: b: c"},
       {"--set model.name=a: b: c: the value 'a: b: c' is not valid YAML", "quote it"}},
      {"mapping for integer",
       {{"run.yaml", "train:\n  seed: {a: 1}\n"}},
       {},
       {"run.yaml:2", "train.seed: expected an integer, got a mapping (with key 'a')"}},
      {"duplicate key",
       {{"run.yaml", "train:\n  seed: 1\n  steps: 5\n  seed: 2\n"}},
       {},
       {"run.yaml:4: duplicate key 'train.seed' (first set at ", "run.yaml:2)"}},
      {"duplicate section",
       {{"run.yaml", "train:\n  seed: 1\noptim:\n  lr: 0.1\ntrain:\n  steps: 5\n"}},
       {},
       {"run.yaml:5: duplicate key 'train' (first set at "}},
      {"duplicate include",
       {{"run.yaml", "include: a.yaml\ninclude: b.yaml\n"}, {"a.yaml", "{}\n"}, {"b.yaml", "{}\n"}},
       {},
       {"run.yaml:2: duplicate key 'include'"}},
      {"duplicate key in --set mapping",
       {{"run.yaml", "{}\n"}},
       {"optim={lr: 0.1, lr: 0.2}"},
       {"--set optim={lr: 0.1, lr: 0.2}: duplicate key 'optim.lr'"}},
      {"self-referencing alias",
       {{"run.yaml", "model: &m\n  vision: *m\n"}},
       {},
       {"run.yaml", "nests more than 32 mappings deep"}},
      {"alias bomb (billion laughs)",
       {{"run.yaml", billion_laughs()}},
       {},
       {"run.yaml: expands to more than 100000 keys"}},
      {"multi-character separator",
       {{"run.yaml", "data:\n  csv_separator: ';;'\n"}},
       {},
       {"data.csv_separator (';;') must be a single character"}},
  };
  return cases;
}

}  // namespace

TEST_CASE("malformed configs exit 2 with a message naming key, place and value") {
  REQUIRE(malformed_configs().size() >= 20);
  for (const auto& c : malformed_configs()) {
    DYNAMIC_SECTION(c.name) {
      TempDir dir;
      for (const auto& [name, text] : c.files) {
        write_file(dir / name, text);
      }
      std::vector<std::string> args = {"config", "show", "-c", dir / "run.yaml"};
      for (const auto& o : c.overrides) {
        args.push_back("--set");
        args.push_back(o);
      }
      const auto result = run_duet(args);
      INFO("stderr: " << result.err);
      CHECK(result.exit_code == 2);
      CHECK(result.out.empty());
      for (const auto& expected : c.expected) {
        CHECK_THAT(result.err, Catch::Contains(expected));
      }
    }
  }
}

TEST_CASE("a missing config file exits 2 naming the file") {
  const auto result = run_duet({"config", "show", "-c", "/nonexistent/run.yaml"});
  CHECK(result.exit_code == 2);
  CHECK_THAT(result.err, Catch::Contains("/nonexistent/run.yaml"));
}

TEST_CASE("bad command-line usage exits 2") {
  CHECK(run_duet({}).exit_code == 2);
  CHECK(run_duet({"no-such-command"}).exit_code == 2);
  CHECK(run_duet({"config", "show"}).exit_code == 2);  // -c is required
  CHECK(run_duet({"--log-level", "loud", "config", "reference"}).exit_code == 2);
}

TEST_CASE("help and version exit 0") {
  const auto help = run_duet({"--help"});
  CHECK(help.exit_code == 0);
  CHECK_THAT(help.out, Catch::Contains("config"));
  const auto show_help = run_duet({"config", "show", "--help"});
  CHECK(show_help.exit_code == 0);
  CHECK_THAT(show_help.out, Catch::Contains("--set"));
  const auto version = run_duet({"--version"});
  CHECK(version.exit_code == 0);
  CHECK_THAT(version.out, Catch::Contains("duet"));
}

TEST_CASE("config show prints the merged config and it loads back unchanged") {
  TempDir dir;
  write_file(dir / "models/small.yaml", "model:\n  embed_dim: 64\n  vision:\n    width: 96\n");
  write_file(dir / "run.yaml",
             "include: models/small.yaml\nmodel:\n  vision:\n    heads: 4\noptim:\n  lr: 0.01\n");
  const auto result = run_duet({"config", "show", "-c", dir / "run.yaml", "--set", "optim.lr=0.001",
                                "--set", "data.train=[a.tar, b.tar]"});
  REQUIRE(result.exit_code == 0);
  CHECK_THAT(result.out, Catch::Contains("embed_dim: 64"));
  CHECK_THAT(result.out, Catch::Contains("width: 96"));
  CHECK_THAT(result.out, Catch::Contains("heads: 4"));
  CHECK_THAT(result.out, Catch::Contains("lr: 0.001"));
  CHECK_THAT(result.out, Catch::Contains("- a.tar"));

  write_file(dir / "resolved.yaml", result.out);
  const auto again = run_duet({"config", "show", "-c", dir / "resolved.yaml"});
  REQUIRE(again.exit_code == 0);
  CHECK(again.out == result.out);
}

TEST_CASE("acceptance: config show on the default run config applies --set") {
  const std::string run = std::string(DUET_TEST_SOURCE_DIR) + "/configs/fashion-mnist.yaml";
  for (const std::string lr : {"0.001", "0.0005"}) {
    const auto result = run_duet({"config", "show", "-c", run, "--set", "optim.lr=" + lr});
    INFO("stderr: " << result.err);
    REQUIRE(result.exit_code == 0);
    CHECK_THAT(result.out, Catch::Contains("optim:\n  lr: " + lr + "\n"));
    CHECK_THAT(result.out, Catch::Contains("name: tiny-fashion-mnist"));  // the run's own keys
    CHECK_THAT(result.out, !Catch::Contains("include:"));                 // resolved, not echoed
  }
}

TEST_CASE("logging.level applies unless --log-level is given") {
  // `model summary` builds the model, which logs a debug line "[models] built ...".
  TempDir dir;
  write_file(dir / "debug.yaml", "include: models/tiny.yaml\nlogging:\n  level: debug\n");
  write_file(dir / "plain.yaml", "include: models/tiny.yaml\n");
  const auto from_config = run_duet({"model", "summary", "-c", dir / "debug.yaml"});
  REQUIRE(from_config.exit_code == 0);
  CHECK_THAT(from_config.err, Catch::Contains("[models] built"));
  const auto default_level = run_duet({"model", "summary", "-c", dir / "plain.yaml"});
  REQUIRE(default_level.exit_code == 0);
  CHECK_THAT(default_level.err, !Catch::Contains("[models] built"));
  const auto explicit_info =
      run_duet({"--log-level", "info", "model", "summary", "-c", dir / "debug.yaml"});
  REQUIRE(explicit_info.exit_code == 0);
  CHECK_THAT(explicit_info.err, !Catch::Contains("[models] built"));
  const auto explicit_debug =
      run_duet({"--log-level", "debug", "model", "summary", "-c", dir / "plain.yaml"});
  REQUIRE(explicit_debug.exit_code == 0);
  CHECK_THAT(explicit_debug.err, Catch::Contains("[models] built"));
}

TEST_CASE("docs/configuration.md is the current `duet config reference`") {
  const auto result = run_duet({"config", "reference"});
  REQUIRE(result.exit_code == 0);
  const std::string docs =
      duet::test::read_file(std::string(DUET_TEST_SOURCE_DIR) + "/docs/configuration.md");
  INFO("regenerate with: build/duet config reference > docs/configuration.md");
  CHECK(docs == result.out);
}
