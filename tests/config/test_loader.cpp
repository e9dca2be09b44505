// Config loading in-process: defaults, include merging, --set, YAML round trip, the schema
// reference, and that errors are config Errors (exit code 2) listing every problem at once.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "common/error.h"
#include "common/test_util.h"
#include "config/loader.h"
#include "duet/build_info.h"

using duet::config::Config;
using duet::config::load;
using duet::config::load_string;
using duet::test::TempDir;
using duet::test::write_file;

namespace {

// The message of the config Error that `fn` throws.
template <class Fn>
std::string config_error_of(Fn fn) {
  try {
    fn();
  } catch (const duet::Error& e) {
    CHECK(e.kind() == duet::ErrorKind::kConfig);
    CHECK(e.exit_code() == 2);
    return e.what();
  }
  FAIL("no config error was thrown");
  return {};
}

}  // namespace

TEST_CASE("an empty config is the documented defaults") {
  const Config c = load_string("", "empty.yaml");
  CHECK(c.model.embed_dim == 512);
  CHECK(c.model.vision.patch_size == 32);
  CHECK(c.model.init_logit_scale == Approx(std::log(1.0 / 0.07)));
  CHECK(c.optim.logit_scale_max == Approx(std::log(100.0)));
  CHECK(c.data.rrc_scale == std::vector<double>{0.9, 1.0});
  CHECK(c.data.csv_separator == "\t");
  CHECK(c.loss.type == duet::config::LossType::kClip);
  CHECK(duet::config::check_consistency(c).empty());
}

TEST_CASE("includes merge deeply, later files and --set win, lists are replaced whole") {
  TempDir dir;
  write_file(dir / "models/base.yaml",
             "model:\n  embed_dim: 64\n  vision:\n    width: 96\n    layers: 3\n"
             "data:\n  train: [a.tar, b.tar]\n");
  write_file(dir / "middle.yaml", "include: models/base.yaml\nmodel:\n  vision:\n    layers: 5\n");
  write_file(dir / "run.yaml",
             "include: [middle.yaml]\nmodel:\n  vision:\n    heads: 4\ndata:\n  train: [c.tar]\n");
  const Config c = load(dir / "run.yaml", {"model.vision.layers=7", "optim.lr=0.002"});
  CHECK(c.model.embed_dim == 64);
  CHECK(c.model.vision.width == 96);
  CHECK(c.model.vision.heads == 4);
  CHECK(c.model.vision.layers == 7);
  CHECK(c.optim.lr == 0.002);
  CHECK(c.data.train == std::vector<std::string>{"c.tar"});
}

TEST_CASE("a mapping given to --set sets every key under it, and the last --set wins") {
  const Config c = load_string("", "x.yaml",
                               {"model.vision={width: 64, heads: 2}", "train.seed=3",
                                "train.seed=4", "data.mean=[0.5, 0.5, 0.5]"});
  CHECK(c.model.vision.width == 64);
  CHECK(c.model.vision.heads == 2);
  CHECK(c.train.seed == 4);
  CHECK(c.data.mean == std::vector<double>{0.5, 0.5, 0.5});
}

TEST_CASE("dotted keys in files are paths") {
  const Config c = load_string("model.vision.width: 64\nmodel.vision.heads: 4\n", "x.yaml");
  CHECK(c.model.vision.width == 64);
}

TEST_CASE("includes are searched in DUET_CONFIG_PATH after the including file's folder") {
  TempDir dir;
  write_file(dir / "presets/models/p.yaml", "model:\n  embed_dim: 32\n");
  write_file(dir / "run/run.yaml", "include: models/p.yaml\n");
  ::setenv("DUET_CONFIG_PATH", (dir / "presets").c_str(), 1);
  const Config c = load(dir / "run/run.yaml");
  ::unsetenv("DUET_CONFIG_PATH");
  CHECK(c.model.embed_dim == 32);
}

TEST_CASE("to_yaml round-trips every key") {
  const Config original = load_string(
      "model:\n  name: x\n  vision: {width: 64, heads: 4}\ndata:\n  train: [a.tar]\n  "
      "csv_separator: ','\noptim:\n  lr: 0.0003\ntokenizer:\n  path: ''\n",
      "x.yaml");
  const std::string yaml = duet::config::to_yaml(original);
  const Config reloaded = load_string(yaml, "resolved.yaml");
  CHECK(duet::config::to_yaml(reloaded) == yaml);
  CHECK(reloaded.optim.lr == 0.0003);
  CHECK(reloaded.data.csv_separator == ",");
  CHECK(reloaded.data.train == std::vector<std::string>{"a.tar"});
}

TEST_CASE("the tab separator survives the YAML round trip") {
  const Config c = load_string(duet::config::to_yaml(Config{}), "defaults.yaml");
  CHECK(c.data.csv_separator == "\t");
}

TEST_CASE("every problem is reported at once") {
  const std::string message = config_error_of(
      [] { load_string("model:\n  embed_dim: 0\ntrain:\n  seed: x\nbogus: 1\n", "many.yaml"); });
  CHECK_THAT(message, Catch::Contains("many.yaml:2: model.embed_dim: must be > 0, got 0"));
  CHECK_THAT(message, Catch::Contains("many.yaml:4: train.seed: expected an integer, got 'x'"));
  CHECK_THAT(message, Catch::Contains("many.yaml:5: unknown key 'bogus'"));
}

TEST_CASE("cross-field rules are checked on programmatic configs too") {
  Config c;
  c.model.text.width = 100;
  c.model.text.heads = 8;
  const auto problems = duet::config::check_consistency(c);
  REQUIRE(problems.size() == 1);
  CHECK_THAT(problems[0],
             Catch::Contains("model.text.width (100) must be divisible by model.text.heads (8)"));
}

TEST_CASE("train and distributed combinations that cannot run are refused at load") {
  CHECK_THAT(config_error_of([] {
               load_string("distributed: {backend: nccl}\ntrain: {device: cpu}\n", "nccl.yaml");
             }),
             Catch::Contains("distributed.backend 'nccl' needs train.device 'cuda' or 'auto'"));
  if (!DUET_NCCL) {  // a build without NCCL refuses it before any rank starts
    CHECK_THAT(config_error_of([] { load_string("distributed: {backend: nccl}\n", "n.yaml"); }),
               Catch::Contains("built without NCCL"));
  }
  CHECK_THAT(config_error_of([] { load_string("data: {workers: -2}\n", "w.yaml"); }),
             Catch::Contains("data.workers"));
}

TEST_CASE("the reference lists every key with its default") {
  const std::string md = duet::config::reference_markdown();
  for (const char* key : {"`model.vision.width`", "`train.batch_size`", "`loss.tile_size`",
                          "`eval.zero_shot.templates`", "`export.dtype`"}) {
    CHECK_THAT(md, Catch::Contains(key));
  }
  CHECK_THAT(md, Catch::Contains("| `optim.lr` | number | `0.0005` | > 0 |"));
}

TEST_CASE("every shipped config and model preset loads, validates and round-trips") {
  namespace fs = std::filesystem;
  const fs::path configs = fs::path(DUET_TEST_SOURCE_DIR) / "configs";
  std::vector<fs::path> files;
  for (const fs::path& dir : {configs, configs / "models"}) {
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (entry.is_regular_file() && entry.path().extension() == ".yaml") {
        files.push_back(entry.path());
      }
    }
  }
  std::sort(files.begin(), files.end());
  REQUIRE(files.size() >= 7);  // fashion-mnist.yaml and the six presets at the time of writing
  for (const auto& file : files) {
    DYNAMIC_SECTION(file.lexically_relative(configs).string()) {
      Config c;
      REQUIRE_NOTHROW(c = load(file.string()));
      CHECK(duet::config::check_consistency(c).empty());
      const std::string yaml = duet::config::to_yaml(c);
      CHECK(duet::config::to_yaml(load_string(yaml, "resolved.yaml")) == yaml);
    }
  }
}

TEST_CASE("YAML alias cycles and alias bombs are config errors, not crashes") {
  CHECK_THAT(config_error_of([] { load_string("model: &m\n  vision: *m\n", "cycle.yaml"); }),
             Catch::Contains("cycle.yaml:") && Catch::Contains("nests more than"));
  std::string bomb = "l0: &l0 {a: 1, b: 1, c: 1, d: 1, e: 1, f: 1, g: 1, h: 1}\n";
  for (int level = 1; level <= 8; ++level) {
    const std::string prev = "*l" + std::to_string(level - 1);
    bomb += "l" + std::to_string(level) + ": &l" + std::to_string(level) + " {a: " + prev +
            ", b: " + prev + ", c: " + prev + ", d: " + prev + ", e: " + prev + ", f: " + prev +
            ", g: " + prev + ", h: " + prev + "}\n";
  }
  CHECK_THAT(config_error_of([&] { load_string(bomb, "bomb.yaml"); }),
             Catch::Contains("bomb.yaml: expands to more than"));
  // Aliases that stay small are fine.
  const Config c = load_string("schedule:\n  min_lr: &v 0.25\noptim:\n  lr: *v\n", "alias.yaml");
  CHECK(c.optim.lr == 0.25);
}

TEST_CASE("a key given twice in one mapping is an error naming key, file and line") {
  CHECK_THAT(config_error_of([] { load_string("optim:\n  lr: 0.1\n  lr: 0.2\n", "dup.yaml"); }),
             Catch::Contains("dup.yaml:3: duplicate key 'optim.lr' (first set at dup.yaml:2)"));
  // The same key in different files, or in a file and --set, is an override, not a duplicate.
  const Config c = load_string("optim:\n  lr: 0.1\n", "run.yaml", {"optim.lr=0.2"});
  CHECK(c.optim.lr == 0.2);
}

TEST_CASE("enumerated keys read and write their spellings, and unknown ones name the choices") {
  const Config c = load_string(
      "loss: {type: siglip, implementation: tiled}\nmodel: {logit_bias: true, vision: {pool: "
      "attention, act: gelu_tanh}, text: {pool: last}}\ntrain: {precision: bf16, device: cpu}\n",
      "enums.yaml");
  CHECK(c.loss.type == duet::config::LossType::kSiglip);
  CHECK(c.loss.implementation == duet::config::LossImplementation::kTiled);
  CHECK(c.model.vision.pool == duet::config::VisionPool::kAttention);
  CHECK(c.model.vision.act == duet::config::Activation::kGeluTanh);
  CHECK(c.model.text.pool == duet::config::TextPool::kLast);
  CHECK(c.train.precision == duet::config::Precision::kBf16);
  CHECK(c.train.device == duet::config::DeviceChoice::kCpu);
  const std::string yaml = duet::config::to_yaml(c);
  CHECK_THAT(yaml, Catch::Contains("type: siglip") && Catch::Contains("pool: attention") &&
                       Catch::Contains("act: gelu_tanh") && Catch::Contains("precision: bf16"));
  CHECK(fmt::format("{}", c.loss.implementation) == "tiled");

  const std::string message =
      config_error_of([] { load_string("train:\n  precision: bf61\n", "typo.yaml"); });
  CHECK_THAT(message, Catch::Contains("typo.yaml:2: train.precision: must be one of: fp32, bf16, "
                                      "got 'bf61' (did you mean 'bf16'?)"));
  CHECK_THAT(config_error_of([] { load_string("model: {vision: {pool: [a]}}\n", "list.yaml"); }),
             Catch::Contains("model.vision.pool: must be one of: class, mean, attention, got a "
                             "list"));
  CHECK_THAT(duet::config::reference_markdown(),
             Catch::Contains("| `loss.type` | string | `clip` | one of: clip, siglip |"));
}

TEST_CASE("every spelling of every enumerated key parses back to its value") {
  auto round_trip = [](auto tag) {
    using E = decltype(tag);
    for (const auto& [value, spelling] : spellings(E{})) {
      CAPTURE(spelling);
      CHECK(duet::config::parse<E>(spelling) == value);
      CHECK(std::string(duet::config::name(value)) == spelling);
    }
    CHECK_FALSE(duet::config::parse<E>("no-such-value").has_value());
  };
  using namespace duet::config;
  round_trip(Activation{});
  round_trip(VisionPool{});
  round_trip(TextPool{});
  round_trip(AttentionImpl{});
  round_trip(TokenizerType{});
  round_trip(LossType{});
  round_trip(LossImplementation{});
  round_trip(ScheduleType{});
  round_trip(Precision{});
  round_trip(DeviceChoice{});
  round_trip(Backend{});
  round_trip(ExportFormat{});
  round_trip(ExportDtype{});
}

TEST_CASE("a --set value of one punctuation character is that character, not YAML syntax") {
  for (const char* separator : {",", ";", "|", "#", ":"}) {
    CAPTURE(separator);
    const Config c = load_string("", "sep.yaml", {std::string("data.csv_separator=") + separator});
    CHECK(c.data.csv_separator == separator);
  }
  // YAML's null stays null, which the single-character rule then refuses with the key.
  CHECK_THAT(config_error_of([] { load_string("", "sep.yaml", {"data.csv_separator=~"}); }),
             Catch::Contains("data.csv_separator"));
}

TEST_CASE("a fused loss on the CPU is refused when the config loads, not at the first step") {
  const std::string message = config_error_of([] {
    load_string("loss: {implementation: fused}\ntrain: {device: cpu}\n", "fused.yaml");
  });
  CHECK_THAT(message, Catch::Contains("loss.implementation 'fused' runs on CUDA devices, but "
                                      "train.device is 'cpu'"));
  CHECK_THAT(message, Catch::Contains("fused.yaml:1"));
}
