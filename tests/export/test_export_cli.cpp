// The duet binary's export, embed and retrieve commands on a small CLIP with the real CLIP BPE
// vocabulary: the files each format writes, refusals with reasons (exit 1), the round trip
// export -> embed --checkpoint giving the same embeddings, images and texts to .npy + ids, and
// retrieval over them.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/test_util.h"
#include "data/image_encode.h"
#include "export/npy.h"
#include "export/safetensors.h"

namespace duet::export_ {
namespace {

namespace fs = std::filesystem;
using test::read_file;
using test::run_duet;
using test::write_file;

const std::string kBpe = std::string(DUET_TEST_SHARED_DATA) + "/bpe_simple_vocab_16e6.txt.gz";

std::string write_config(const test::TempDir& dir) {
  const std::string path = dir / "model.yaml";
  write_file(path, R"(model:
  name: cli-test
  embed_dim: 24
  vision: {image_size: 16, patch_size: 4, width: 32, layers: 1, heads: 4}
  text: {context_length: 16, vocab_size: 49408, width: 32, layers: 1, heads: 4}
tokenizer: {type: clip_bpe, path: ")" +
                       kBpe + R"("}
train: {device: cpu, seed: 3}
eval: {batch_size: 2}
)");
  return path;
}

// A CSV of three 16x16 PNG images with captions.
std::string write_images(const test::TempDir& dir) {
  std::string csv = "filepath\ttitle\n";
  for (int i = 0; i < 3; ++i) {
    std::vector<uint8_t> pixels(16 * 16 * 3);
    for (size_t p = 0; p < pixels.size(); ++p) {
      pixels[p] = static_cast<uint8_t>((p * (i + 3) * 37) % 251);
    }
    const std::string name = "img" + std::to_string(i) + ".png";
    write_file(dir / name, data::encode_png(pixels.data(), 16, 16, 3));
    csv += name + "\tpicture " + std::to_string(i) + "\n";
  }
  write_file(dir / "images.csv", csv);
  return dir / "images.csv";
}

TEST_CASE("duet export writes the files of each format", "[export][cli]") {
  if (!fs::exists(kBpe)) {
    DUET_SKIP_OR_FAIL_IN_CI("the CLIP BPE vocabulary " << kBpe << " is missing");
  }
  test::TempDir dir;
  const std::string config = write_config(dir);

  auto hf = run_duet({"export", "-c", config, "--format", "hf", "--out", dir / "hf"});
  INFO(hf.err);
  REQUIRE(hf.exit_code == 0);
  for (const char* file :
       {"config.json", "model.safetensors", "preprocessor_config.json", "vocab.json", "merges.txt",
        "tokenizer_config.json", "special_tokens_map.json"}) {
    INFO(file);
    CHECK(fs::exists(dir / ("hf/" + std::string(file))));
  }
  const auto hf_config = nlohmann::json::parse(read_file(dir / "hf/config.json"));
  CHECK(hf_config.at("model_type") == "clip");
  CHECK(hf_config.at("architectures").at(0) == "CLIPModel");
  CHECK(hf_config.at("projection_dim") == 24);
  CHECK(hf_config.at("text_config").at("eos_token_id") == 49407);
  CHECK(hf_config.at("text_config").at("hidden_act") == "gelu");
  CHECK(hf_config.at("vision_config").at("intermediate_size") == 128);
  const auto vocab = nlohmann::json::parse(read_file(dir / "hf/vocab.json"));
  CHECK(vocab.size() == 49408);
  CHECK(vocab.at("<|endoftext|>") == 49407);
  CHECK(vocab.at("!") == 0);
  const std::string merges = read_file(dir / "hf/merges.txt");
  CHECK(std::count(merges.begin(), merges.end(), '\n') == 48895);  // header + 48,894 merges
  const auto pre = nlohmann::json::parse(read_file(dir / "hf/preprocessor_config.json"));
  CHECK(pre.at("crop_size").at("height") == 16);
  CHECK(pre.at("size").at("shortest_edge") == 16);
  CHECK(pre.at("image_mean").at(0).get<double>() == Approx(0.48145466));

  auto oc = run_duet({"export", "-c", config, "--format", "open_clip", "--out", dir / "oc"});
  REQUIRE(oc.exit_code == 0);
  CHECK(fs::exists(dir / "oc/open_clip_model.safetensors"));
  const auto oc_config = nlohmann::json::parse(read_file(dir / "oc/open_clip_config.json"));
  CHECK(oc_config.at("model_cfg").at("text_cfg").at("pool_type") == "argmax");
  CHECK(oc_config.at("model_cfg").at("vision_cfg").at("head_width") == 8);

  auto st = run_duet({"export", "-c", config, "--format", "safetensors", "--dtype", "float16",
                      "--out", dir / "w/model.safetensors"});
  REQUIRE(st.exit_code == 0);
  CHECK_THAT(st.out, Catch::Contains("model.safetensors"));
}

TEST_CASE("duet export refuses what a format cannot hold, with the reasons", "[export][cli]") {
  if (!fs::exists(kBpe)) {
    DUET_SKIP_OR_FAIL_IN_CI("the CLIP BPE vocabulary " << kBpe << " is missing");
  }
  test::TempDir dir;
  const std::string config = write_config(dir);
  auto r = run_duet({"export", "-c", config, "--set", "model.vision.pool=mean", "--set",
                     "model.text.ls_init=0.1", "--format", "hf", "--out", dir / "hf"});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("cannot export this model as hf (CLIPModel)") &&
                        Catch::Contains("LayerScale") &&
                        Catch::Contains("model.vision.pool 'mean'"));
  CHECK_FALSE(fs::exists(dir / "hf/model.safetensors"));
  auto bad = run_duet({"export", "-c", config, "--format", "onnx", "--out", dir / "x"});
  CHECK(bad.exit_code == 2);
  auto no_config = run_duet({"export", "--out", dir / "x"});
  CHECK(no_config.exit_code == 2);
  CHECK_THAT(no_config.err, Catch::Contains("-c CONFIG is required"));
}

TEST_CASE("embed, export and re-import, retrieve", "[export][cli]") {
  if (!fs::exists(kBpe)) {
    DUET_SKIP_OR_FAIL_IN_CI("the CLIP BPE vocabulary " << kBpe << " is missing");
  }
  test::TempDir dir;
  const std::string config = write_config(dir);
  const std::string images = write_images(dir);
  write_file(dir / "texts.txt", "a photo of a cat\npicture 1\n\nsomething else\n");

  // The config's own (seeded) model, then the same weights through each export format.
  auto base =
      run_duet({"embed", "-c", config, "--texts", dir / "texts.txt", "--out", dir / "base.npy"});
  INFO(base.err);
  REQUIRE(base.exit_code == 0);
  CHECK_THAT(base.out, Catch::Contains("4 embeddings of dimension 24"));
  CHECK(read_file(dir / "base.ids.txt") == "0\n1\n2\n3\n");
  const NpyArray text = read_npy(dir / "base.npy");
  CHECK(text.shape == std::vector<int64_t>{4, 24});
  const auto* row = reinterpret_cast<const float*>(text.data.data());
  double norm = 0;
  for (int i = 0; i < 24; ++i) {
    norm += row[i] * row[i];
  }
  CHECK(norm == Approx(1.0).epsilon(1e-5));

  for (const auto& [format, out] : std::vector<std::pair<std::string, std::string>>{
           {"hf", dir / "hf"}, {"open_clip", dir / "oc"}, {"safetensors", dir / "w.safetensors"}}) {
    INFO(format);
    REQUIRE(run_duet({"export", "-c", config, "--format", format, "--out", out}).exit_code == 0);
    auto again = run_duet({"embed", "-c", config, "--checkpoint", out, "--texts", dir / "texts.txt",
                           "--out", dir / (format + ".npy")});
    INFO(again.err);
    REQUIRE(again.exit_code == 0);
    CHECK(read_file(dir / (format + ".npy")) == read_file(dir / "base.npy"));
    // model.init_from does the same through the config.
    auto init = run_duet({"embed", "-c", config, "--set", "model.init_from=" + out, "--set",
                          "train.seed=99", "--texts", dir / "texts.txt", "--out",
                          dir / (format + "-init.npy")});
    REQUIRE(init.exit_code == 0);
    CHECK(read_file(dir / (format + "-init.npy")) == read_file(dir / "base.npy"));
  }

  // Images: ids name the CSV lines; float16 output.
  auto img = run_duet(
      {"embed", "-c", config, "--images", images, "--dtype", "float16", "--out", dir / "img.npy"});
  INFO(img.err);
  REQUIRE(img.exit_code == 0);
  const NpyArray image = read_npy(dir / "img.npy");
  CHECK(image.descr == "<f2");
  CHECK(image.shape == std::vector<int64_t>{3, 24});
  const std::string ids = read_file(dir / "img.ids.txt");
  CHECK_THAT(ids, Catch::Contains("images.csv:2") && Catch::Contains("images.csv:4"));

  auto ret = run_duet({"retrieve", "-c", config, "--embeddings", dir / "img.npy", "-q", "picture 1",
                       "-q", "a dog", "-k", "2", "--json"});
  INFO(ret.err);
  REQUIRE(ret.exit_code == 0);
  std::vector<std::string> lines;
  std::string line;
  std::istringstream stream(ret.out);
  while (std::getline(stream, line)) {
    lines.push_back(line);
  }
  REQUIRE(lines.size() == 2);
  const auto first = nlohmann::json::parse(lines[0]);
  CHECK(first.at("query") == "picture 1");
  REQUIRE(first.at("results").size() == 2);
  CHECK(first.at("results").at(0).at("rank") == 1);
  CHECK(first.at("results").at(0).at("score").get<double>() >=
        first.at("results").at(1).at("score").get<double>());

  // Bad inputs: both sources, a mismatched embedding file, a missing ids file.
  CHECK(run_duet({"embed", "-c", config, "--images", images, "--texts", dir / "texts.txt", "--out",
                  dir / "x.npy"})
            .exit_code == 2);
  auto wrong_dim = run_duet({"retrieve", "-c", config, "--set", "model.embed_dim=16",
                             "--embeddings", dir / "img.npy", "-q", "x"});
  CHECK(wrong_dim.exit_code == 1);
  CHECK_THAT(wrong_dim.err,
             Catch::Contains("24-d embeddings but the model's model.embed_dim is 16"));
  fs::remove(dir / "img.ids.txt");
  auto no_ids = run_duet({"retrieve", "-c", config, "--embeddings", dir / "img.npy", "-q", "x"});
  CHECK(no_ids.exit_code == 1);
  CHECK_THAT(no_ids.err, Catch::Contains("img.ids.txt"));
}

TEST_CASE("duet train fine-tunes from an export with the image tower locked (LiT)",
          "[export][cli][lit]") {
  if (!fs::exists(kBpe)) {
    DUET_SKIP_OR_FAIL_IN_CI("the CLIP BPE vocabulary " << kBpe << " is missing");
  }
  test::TempDir dir;
  const std::string config = write_config(dir);
  const std::string images = write_images(dir);
  REQUIRE(run_duet({"export", "-c", config, "--set", "train.seed=21", "--format", "hf", "--out",
                    dir / "init"})
              .exit_code == 0);
  auto train = run_duet({"train",
                         "-c",
                         config,
                         "--set",
                         "model.init_from=" + (dir / "init"),
                         "--set",
                         "model.lock_image=true",
                         "--set",
                         "data.train=[" + images + "]",
                         "--set",
                         "data.workers=0",
                         "--set",
                         "train.steps=2",
                         "--set",
                         "train.batch_size=3",
                         "--set",
                         "train.output_dir=" + (dir / "runs"),
                         "--set",
                         "train.run_name=lit",
                         "--set",
                         "logging.tensorboard=false",
                         "--set",
                         "optim.lr=0.01"});
  INFO(train.out << train.err);
  REQUIRE(train.exit_code == 0);
  CHECK_THAT(train.err, Catch::Contains("initialised from the transformers CLIPModel") &&
                            Catch::Contains("image tower frozen"));
  const std::string checkpoint = dir / "runs/lit/checkpoints/step-00000002";
  REQUIRE(run_duet({"export", "--checkpoint", checkpoint, "--format", "safetensors", "--out",
                    dir / "after.safetensors"})
              .exit_code == 0);
  REQUIRE(run_duet({"export", "-c", config, "--checkpoint", dir / "init", "--format", "safetensors",
                    "--out", dir / "before.safetensors"})
              .exit_code == 0);
  const SafetensorsFile before(dir / "before.safetensors");
  const SafetensorsFile after(dir / "after.safetensors");
  int64_t image_tensors = 0;
  int64_t text_changed = 0;
  for (const auto& entry : before.tensors()) {
    INFO(entry.name);
    const TensorEntry* trained = after.find(entry.name);
    REQUIRE(trained != nullptr);
    const bool same = before.data(entry) == after.data(*trained);
    if (entry.name.rfind("visual.", 0) == 0) {
      CHECK(same);  // frozen: bit-identical to the initialisation
      ++image_tensors;
    } else if (!same) {
      ++text_changed;
    }
  }
  CHECK(image_tensors > 10);
  CHECK(text_changed > 10);
}

}  // namespace
}  // namespace duet::export_
