// CLIP_benchmark's WebDataset layout: metadata files, template filling with Python's
// str.format rules, caption lines, multilabel .npy targets and WebP images read by the loader.
// (That `duet data fashion-mnist` writes such a dataset is in test_fashion_mnist.cpp.)
#include <webp/encode.h>

#include <catch2/catch.hpp>

#include <cstring>
#include <fstream>

#include "common/error.h"
#include "data/clip_benchmark_dataset.h"
#include "data/image_decode.h"
#include "data/loader.h"
#include "data/tar_writer.h"
#include "data_fixtures.h"

namespace {

using namespace duet::data;
using duet::data::testing::TempDir;

void write(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

// A .npy of `values` as little-endian float32, format 1.0.
std::string npy_f4(const std::vector<float>& values) {
  std::string header =
      fmt::format("{{'descr': '<f4', 'fortran_order': False, 'shape': ({},), }}", values.size());
  header.resize(((10 + header.size() + 1 + 63) / 64) * 64 - 10 - 1, ' ');
  header += '\n';
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  out.append(reinterpret_cast<const char*>(values.data()), values.size() * 4);
  return out;
}

std::string webp_rgb(int width, int height, uint8_t value) {
  std::vector<uint8_t> pixels(static_cast<size_t>(width) * height * 3, value);
  uint8_t* out = nullptr;
  const size_t size = WebPEncodeLosslessRGB(pixels.data(), width, height, width * 3, &out);
  std::string bytes(reinterpret_cast<const char*>(out), size);
  WebPFree(out);
  return bytes;
}

}  // namespace

TEST_CASE("CLIP_benchmark templates are filled like str.format(c=name)") {
  CHECK(fill_benchmark_template("a photo of a {c}.", "cat") == "a photo of a cat.");
  CHECK(fill_benchmark_template("{{c}} is {c}", "x") == "{c} is x");
  CHECK_THROWS_WITH(fill_benchmark_template("a {} photo", "x", "t.txt template 2"),
                    Catch::Contains("t.txt template 2") && Catch::Contains("{c}"));
  CHECK(split_caption_lines("one\ntwo\r\nthree\n") ==
        std::vector<std::string>{"one", "two", "three"});
  CHECK(split_caption_lines("a\n\nb") == std::vector<std::string>{"a", "", "b"});
}

TEST_CASE("a CLIP_benchmark dataset directory reads with its metadata and clear errors") {
  TempDir dir("cb");
  const std::string root = dir.file("mnist_like");
  CHECK_THROWS_WITH(read_clip_benchmark_dataset(root), Catch::Contains("no directory"));
  write(root + "/test/nshards.txt", "2\n");
  write(root + "/test/0.tar", "");
  CHECK_THROWS_WITH(read_clip_benchmark_dataset(root), Catch::Contains("1.tar' is missing"));
  write(root + "/test/1.tar", "");
  CHECK_THROWS_WITH(read_clip_benchmark_dataset(root), Catch::Contains("classnames.txt"));
  write(root + "/classnames.txt", "cat\n  dog \n");
  write(root + "/zeroshot_classification_templates.txt", "a photo of a {c}.\n{c}\n");
  const ClipBenchmarkDataset d = read_clip_benchmark_spec(root + ":test");
  CHECK(d.task == BenchmarkTask::kClassification);  // no dataset_type.txt
  CHECK(d.name == "mnist_like/test");
  CHECK(d.shards == std::vector<std::string>{root + "/test/0.tar", root + "/test/1.tar"});
  CHECK(d.classnames == std::vector<std::string>{"cat", "dog"});
  CHECK(benchmark_prompts(d)[1] == std::vector<std::string>{"a photo of a dog.", "dog"});
  write(root + "/zeroshot_classification_templates.txt", "a photo of a {}.\n");
  CHECK_THROWS_WITH(read_clip_benchmark_dataset(root),
                    Catch::Contains("zeroshot_classification_templates.txt template 1"));
  write(root + "/dataset_type.txt", "Retrieval\n");
  CHECK(read_clip_benchmark_dataset(root).task == BenchmarkTask::kRetrieval);
  write(root + "/dataset_type.txt", "detection\n");
  CHECK_THROWS_WITH(read_clip_benchmark_dataset(root), Catch::Contains("detection"));
  CHECK_THROWS_WITH(read_clip_benchmark_dataset(root, "train"),
                    Catch::Contains("no split 'train'"));
  CHECK(is_clip_benchmark_dataset(root));
  CHECK_FALSE(is_clip_benchmark_dataset(root, "val"));
}

TEST_CASE("multilabel .npy targets and WebP images are read from the shards") {
  TempDir dir("cb_ml");
  const std::string shard = dir.file("0.tar");
  {
    TarWriter tar(shard);
    tar.add("a.webp", webp_rgb(9, 7, 200));
    tar.add("a.npy", npy_f4({1.0f, 0.0f, 1.0f}));
    tar.add("b.webp", webp_rgb(9, 7, 10));
    tar.add("b.npy", npy_f4({0.0f, 0.0f, 1.0f}));
    tar.close();
  }
  const auto targets = read_multilabel_targets({shard}, 3);
  REQUIRE(targets.size() == 2);
  CHECK(targets.at(shard + ":a") == std::vector<uint8_t>{1, 0, 1});
  CHECK(targets.at(shard + ":b") == std::vector<uint8_t>{0, 0, 1});
  CHECK_THROWS_WITH(read_multilabel_targets({shard}, 4), Catch::Contains("4 numbers"));

  const std::string bytes = webp_rgb(9, 7, 200);
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  CHECK(sniff_image_format(data, bytes.size()) == ImageFormat::kWebp);
  const Image image = decode_image(data, bytes.size());
  CHECK(image.width == 9);
  CHECK(image.height == 7);
  CHECK(image.pixels[0] == 200);
  CHECK_THROWS_AS(decode_image(data, bytes.size() / 2), ImageDecodeError);

  duet::config::DataConfig config;
  LoaderOptions options;
  options.sources = {shard};
  options.mode = LoaderMode::kEval;
  options.image_size = 7;
  options.require_captions = false;
  Loader loader(config, options);
  const auto batch = loader.next();
  REQUIRE(batch);
  CHECK(batch->size() == 2);
  CHECK(batch->keys[1] == shard + ":b");
}
