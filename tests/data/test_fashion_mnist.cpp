// The Fashion-MNIST generator on small IDX files written by the test: shard layout, captions,
// labels, the pairs layout's held-out pairs, determinism, and reading back through the loader.
// LibTorch before Catch2: c10 defines a CHECK macro that Catch2's must replace.
#include <torch/torch.h>

#include <fmt/format.h>
#include <zlib.h>
#include <catch2/catch.hpp>

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>

#include "data/clip_benchmark_dataset.h"
#include "data/fashion_mnist.h"
#include "data/image_decode.h"
#include "data/loader.h"
#include "data/webdataset_source.h"
#include "data_fixtures.h"

using namespace duet::data;
using namespace duet::data::testing;

namespace {

void write_idx_gz(const std::string& path, const std::vector<uint32_t>& dims,
                  const std::vector<uint8_t>& data) {
  std::string s = {0, 0, 0x08, static_cast<char>(dims.size())};
  for (uint32_t d : dims) {
    for (int shift : {24, 16, 8, 0}) {
      s.push_back(static_cast<char>(d >> shift));
    }
  }
  s.append(data.begin(), data.end());
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, s.data(), static_cast<unsigned>(s.size()));
  gzclose(f);
}

// A fake Fashion-MNIST: `n` images per split, image i filled with value i, label i % 10.
void write_fake_idx(const std::string& dir, uint32_t n) {
  for (const char* split : {"train", "t10k"}) {
    std::vector<uint8_t> images(static_cast<size_t>(n) * 28 * 28);
    std::vector<uint8_t> labels(n);
    for (uint32_t i = 0; i < n; ++i) {
      std::fill_n(images.begin() + static_cast<ptrdiff_t>(i) * 784, 784, static_cast<uint8_t>(i));
      labels[i] = static_cast<uint8_t>(i % 10);
    }
    write_idx_gz(fmt::format("{}/{}-images-idx3-ubyte.gz", dir, split), {n, 28, 28}, images);
    write_idx_gz(fmt::format("{}/{}-labels-idx1-ubyte.gz", dir, split), {n}, labels);
  }
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST_CASE("fashion-mnist: single layout writes labelled, captioned shards") {
  TempDir dir("fm");
  write_fake_idx(dir.path().string(), 45);
  FashionMnistOptions o;
  o.idx_dir = dir.path().string();
  o.out_dir = dir.file("out");
  o.shard_size = 20;
  const FashionMnistSummary s = write_fashion_mnist(o);
  REQUIRE(s.splits.count("train"));
  CHECK(s.splits.at("train").samples == 45);
  CHECK(s.splits.at("train").shards == 3);
  CHECK(s.splits.at("train").pattern == dir.file("out") + "/train/{000000..000002}.tar");

  TarShardReader reader(dir.file("out/train/000001.tar"), 0);
  RawSample first;
  REQUIRE(reader.next(first));
  CHECK(first.where == dir.file("out/train/000001.tar") + ":000020");
  CHECK(first.label == std::optional<int64_t>(0));  // 20 % 10
  REQUIRE(first.caption);
  CHECK(first.caption->find("t-shirt") != std::string::npos);
  CHECK(first.json.empty());

  const auto manifest = nlohmann::json::parse(slurp(dir.file("out/dataset.json")));
  CHECK(manifest["splits"]["test"]["samples"] == 45);
  CHECK(slurp(s.classnames).rfind("t-shirt\ntrouser\n", 0) == 0);

  // Read back through the loader: every sample, grey images as 3 equal channels, labels intact.
  duet::config::DataConfig c;
  c.workers = 2;
  LoaderOptions lo;
  lo.sources = {s.splits.at("train").pattern};
  lo.mode = LoaderMode::kEval;
  lo.batch_size = 50;
  lo.image_size = 28;
  lo.require_labels = true;
  Loader loader(c, lo);
  const auto b = loader.next();
  REQUIRE(b);
  CHECK(b->size() == 45);
  for (int64_t i = 0; i < 45; ++i) {
    CHECK(b->labels[i].item<int64_t>() == i % 10);
  }
  // Image i is constant i: after normalisation the channels differ only by mean/std.
  const float v = b->images[7][0][3][3].item<float>();
  CHECK(v == Approx((7 / 255.0 - 0.48145466) / 0.26862954).margin(1e-4));
  CHECK(loader.stats().skipped == 0);

  // Deterministic output.
  o.out_dir = dir.file("again");
  o.threads = 1;
  write_fashion_mnist(o);
  CHECK(slurp(dir.file("again/train/000002.tar")) == slurp(dir.file("out/train/000002.tar")));
}

TEST_CASE("fashion-mnist: pairs layout keeps held-out pairs out of training") {
  TempDir dir("fm_pairs");
  write_fake_idx(dir.path().string(), 60);
  FashionMnistOptions o;
  o.idx_dir = dir.path().string();
  o.out_dir = dir.file("out");
  o.layout = "pairs";
  o.shard_size = 20000;
  const FashionMnistSummary s = write_fashion_mnist(o);
  CHECK(s.splits.at("train").samples == 60000);
  CHECK(s.splits.at("heldout").samples == 5000);
  std::set<int64_t> train_pairs;
  TarShardReader train(dir.file("out/train/000000.tar"), 0);
  RawSample r;
  int n = 0;
  while (train.next(r) && n++ < 20000) {
    REQUIRE(r.label);
    const int left = static_cast<int>(*r.label / 10);
    const int right = static_cast<int>(*r.label % 10);
    CHECK_FALSE(is_heldout_pair(left, right));
    CHECK(left != right);
    train_pairs.insert(*r.label);
  }
  CHECK(train_pairs.size() == 80);  // 90 ordered pairs of distinct garments minus 10 held out
  TarShardReader held(dir.file("out/heldout/0.tar"), 0);  // CLIP_benchmark shard names
  REQUIRE(held.next(r));
  CHECK(is_heldout_pair(static_cast<int>(*r.label / 10), static_cast<int>(*r.label % 10)));
  const auto meta = nlohmann::json::parse(r.json);
  CHECK(meta["heldout_pair"] == true);
  CHECK(meta["left"] == fashion_mnist_classes()[static_cast<size_t>(*r.label / 10)]);
  CHECK(pair_caption(8, 7, 0) == "a bag to the left of a sneaker.");
  CHECK(pair_caption(9, 2, 1) == "a pullover to the right of an ankle boot.");

  // The held-out split read back through the loader: every sample, captioned, labelled with
  // its held-out pair, the 56x56 canvas resized to the model's 28 pixels.
  duet::config::DataConfig c;
  c.workers = 2;
  LoaderOptions lo;
  lo.sources = {s.splits.at("heldout").pattern};
  lo.mode = LoaderMode::kEval;
  lo.batch_size = 1000;
  lo.image_size = 28;
  Loader loader(c, lo);
  int64_t samples = 0;
  while (const auto b = loader.next()) {
    CHECK(b->images.sizes() == torch::IntArrayRef({b->size(), 3, 28, 28}));
    for (int64_t i = 0; i < b->size(); ++i) {
      const int64_t label = b->labels[i].item<int64_t>();
      const int left = static_cast<int>(label / 10);
      const int right = static_cast<int>(label % 10);
      CHECK(is_heldout_pair(left, right));
      std::set<std::string> captions;
      for (int variant = 0; variant < 4; ++variant) {
        captions.insert(pair_caption(left, right, variant));
      }
      CHECK(captions.count(b->captions[static_cast<size_t>(i)]) == 1);
    }
    samples += b->size();
  }
  CHECK(samples == 5000);
  CHECK(loader.stats().skipped == 0);
}

TEST_CASE("fashion-mnist output is a CLIP_benchmark dataset") {
  TempDir dir("fm_cb");
  write_fake_idx(dir.path().string(), 45);
  FashionMnistOptions o;
  o.idx_dir = dir.path().string();
  o.out_dir = dir.file("out");
  o.shard_size = 20;
  write_fashion_mnist(o);
  const ClipBenchmarkDataset single = read_clip_benchmark_dataset(dir.file("out"));
  CHECK(single.task == BenchmarkTask::kClassification);
  CHECK(single.shards.size() == 3);  // 45 test images in shards of 20: 0.tar, 1.tar, 2.tar
  CHECK(single.classnames == fashion_mnist_classes());
  CHECK(benchmark_prompts(single)[0][0] == "a photo of a t-shirt.");
  CHECK(slurp(dir.file("out/dataset_type.txt")) == "classification\n");

  o.layout = "pairs";
  o.out_dir = dir.file("pairs");
  o.shard_size = 5000;
  write_fashion_mnist(o);
  const ClipBenchmarkDataset heldout = read_clip_benchmark_dataset(dir.file("pairs"), "heldout");
  REQUIRE(heldout.classnames.size() == 100);
  CHECK(heldout.classnames[87] == "a bag to the left of a sneaker");
  CHECK(benchmark_prompts(heldout)[87][0] == "a bag to the left of a sneaker.");
  const ClipBenchmarkDataset retrieval =
      read_clip_benchmark_dataset(dir.file("pairs/retrieval"), "test");
  CHECK(retrieval.task == BenchmarkTask::kRetrieval);
  TarShardReader reader(retrieval.shards[0], 0);
  RawSample sample;
  int64_t samples = 0;
  std::set<std::string> captions;
  while (reader.next(sample)) {
    ++samples;
    REQUIRE(sample.caption);
    const auto lines = split_caption_lines(*sample.caption);
    CHECK(lines.size() == 4);
    captions.insert(lines.begin(), lines.end());
    const Image image =
        decode_image(reinterpret_cast<const uint8_t*>(sample.image.data()), sample.image.size());
    CHECK(image.width == 56);
    CHECK(image.height == 56);
  }
  CHECK(samples == 90);           // every ordered pair of distinct garments once
  CHECK(captions.size() == 360);  // no caption shared by two images
}
