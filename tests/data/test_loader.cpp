// The loader: order, skips, determinism across worker counts, resume, distributed splits,
// tokens and labels, and errors. Data: small shards and a TSV written by the tests, with
// corrupt, truncated, caption-less and unreadable samples mixed in.
// LibTorch before Catch2: c10 defines a CHECK macro that Catch2's must replace.
#include <torch/torch.h>

#include <fmt/format.h>
#include <zlib.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <stdexcept>

#include "common/error.h"
#include "data/loader.h"
#include "data_fixtures.h"

using namespace duet::data;
using namespace duet::data::testing;

namespace {

// 10 + 12 + 10 keys in three shards and a 6-row TSV: 33 valid samples, 5 bad ones
// (corrupt_image 2, missing_caption 1, empty_caption 1, unreadable_file 1).
struct Dataset {
  TempDir dir{"loader"};
  std::vector<std::string> sources;
  static constexpr int kValid = 33;

  Dataset() {
    write_valid_shard(dir.file("s0.tar"), "a", 10);
    std::vector<ShardSample> mixed;
    for (int i = 0; i < 8; ++i) {
      mixed.push_back({fmt::format("b_{:04d}", i),
                       {{".jpg", pattern_jpeg(24 + i, 20, i)}, {".txt", fmt::format("b {}", i)}}});
    }
    const std::string jpeg = pattern_jpeg(32, 32, 9);
    mixed.push_back({"b_bad1", {{".jpg", "this is not a jpeg"}, {".txt", "corrupt"}}});
    mixed.push_back({"b_bad2", {{".jpg", jpeg.substr(0, jpeg.size() / 2)}, {".txt", "truncated"}}});
    mixed.push_back({"b_bad3", {{".png", pattern_png(8, 8, 1)}}});
    mixed.push_back({"b_bad4", {{".png", pattern_png(8, 8, 2)}, {".txt", "  \n"}}});
    write_shard(dir.file("s1.tar"), mixed);
    write_valid_shard(dir.file("s2.tar"), "c", 10);
    std::string tsv = "filepath\ttitle\n";
    for (int i = 0; i < 5; ++i) {
      write_file(dir.file(fmt::format("img{}.png", i)), pattern_png(18, 22, 40 + i));
      tsv += fmt::format("img{}.png\td {}\n", i, i);
    }
    tsv += "missing.png\tgone\n";
    write_file(dir.file("d.tsv"), tsv);
    sources = {dir.file("s{0..2}.tar"), dir.file("d.tsv")};
  }
};

duet::config::DataConfig data_config(int64_t workers, int64_t shuffle_buffer = 8) {
  duet::config::DataConfig c;
  c.workers = workers;
  c.prefetch = 2;
  c.shuffle_buffer = shuffle_buffer;
  c.rrc_scale = {0.5, 1.0};
  c.hflip = true;
  return c;
}

LoaderOptions options(const std::vector<std::string>& sources, LoaderMode mode, int64_t batch) {
  LoaderOptions o;
  o.sources = sources;
  o.mode = mode;
  o.batch_size = batch;
  o.image_size = 12;
  o.seed = 3;
  return o;
}

std::vector<Batch> epoch(Loader& loader) {
  std::vector<Batch> out;
  while (auto b = loader.next()) {
    out.push_back(std::move(*b));
  }
  return out;
}

std::vector<std::string> keys(const std::vector<Batch>& batches) {
  std::vector<std::string> k;
  for (const auto& b : batches) {
    k.insert(k.end(), b.keys.begin(), b.keys.end());
  }
  return k;
}

void check_same(const std::vector<Batch>& a, const std::vector<Batch>& b) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].keys == b[i].keys);
    CHECK(a[i].captions == b[i].captions);
    CHECK(torch::equal(a[i].images, b[i].images));
    CHECK(torch::equal(a[i].labels, b[i].labels));
  }
}

}  // namespace

TEST_CASE("loader: eval reads every valid sample in source order and counts the skips") {
  Dataset d;
  Loader loader(data_config(0), options(d.sources, LoaderMode::kEval, 8));
  const auto batches = epoch(loader);
  REQUIRE(batches.size() == 5);  // 8 8 8 8 1
  CHECK(batches.back().size() == 1);
  CHECK(batches[0].images.sizes() == torch::IntArrayRef({8, 3, 12, 12}));
  CHECK(batches[0].images.dtype() == torch::kFloat32);
  CHECK(batches[0].images.is_contiguous());
  CHECK_FALSE(batches[0].tokens.defined());
  const auto k = keys(batches);
  REQUIRE(k.size() == Dataset::kValid);
  CHECK(k.front() == d.dir.file("s0.tar") + ":a_0000");
  CHECK(k[10] == d.dir.file("s1.tar") + ":b_0000");
  CHECK(k.back() == d.dir.file("d.tsv") + ":6");
  CHECK(batches[0].captions[1] == "a 1");
  CHECK(batches[0].labels[3].item<int64_t>() == 3);
  CHECK(batches.back().labels[0].item<int64_t>() == -1);  // CSV captions are not class indices

  const LoaderStats s = loader.stats();
  CHECK(s.samples == Dataset::kValid);
  CHECK(s.batches == 5);
  CHECK(s.skipped == 5);
  const std::map<std::string, int64_t> expected = {
      {"corrupt_image", 2}, {"empty_caption", 1}, {"missing_caption", 1}, {"unreadable_file", 1}};
  CHECK(s.skipped_by_reason == expected);
  CHECK(s.samples_per_second > 0);
  CHECK(loader.epoch() == 1);
}

TEST_CASE("loader: batches do not depend on the number of workers") {
  Dataset d;
  for (LoaderMode mode : {LoaderMode::kEval, LoaderMode::kTrain}) {
    Loader l0(data_config(0), options(d.sources, mode, 4));
    const auto ref = epoch(l0);
    for (int workers : {1, 2, 5}) {
      INFO("workers " << workers);
      Loader lw(data_config(workers), options(d.sources, mode, 4));
      check_same(ref, epoch(lw));
    }
  }
}

TEST_CASE("loader: data.workers -1 takes this rank's share of the cores") {
  CHECK(resolve_workers(3, 4, 64) == 3);  // an explicit number stands
  CHECK(resolve_workers(0, 1, 64) == 0);
  CHECK(resolve_workers(-1, 1, 2) == 2);  // the default on a 2-core machine: as before
  CHECK(resolve_workers(-1, 1, 16) == 16);
  CHECK(resolve_workers(-1, 8, 96) == 12);   // 8 ranks on a 96-core node
  CHECK(resolve_workers(-1, 8, 4) == 1);     // at least one
  CHECK(resolve_workers(-1, 1, 256) == 32);  // at most 32
  CHECK(resolve_workers(-1, 1) >= 1);        // this machine
  CHECK(duet::config::DataConfig{}.workers == -1);
}

TEST_CASE("loader: training shuffles per epoch, drops the last partial batch, is seeded") {
  Dataset d;
  Loader a(data_config(2), options(d.sources, LoaderMode::kTrain, 4));
  const auto e0 = epoch(a);
  const auto e1 = epoch(a);
  REQUIRE(e0.size() == Dataset::kValid / 4);
  REQUIRE(e1.size() == Dataset::kValid / 4);
  CHECK(keys(e0) != keys(e1));
  const auto k0 = keys(e0);
  CHECK(std::set<std::string>(k0.begin(), k0.end()).size() == k0.size());

  Loader b(data_config(0), options(d.sources, LoaderMode::kTrain, 4));
  check_same(e0, epoch(b));
  auto other = options(d.sources, LoaderMode::kTrain, 4);
  other.seed = 4;
  Loader c(data_config(0), other);
  CHECK(keys(epoch(c)) != k0);
}

TEST_CASE("loader: a restored position continues with the same next batch") {
  Dataset d;
  Loader a(data_config(2), options(d.sources, LoaderMode::kTrain, 4));
  for (int i = 0; i < 3; ++i) {
    REQUIRE(a.next());
  }
  const std::string mid = a.state();
  std::vector<Batch> rest_a = epoch(a);
  const std::string end = a.state();
  const auto next_epoch_a = a.next();

  for (int workers : {0, 3}) {
    INFO("workers " << workers);
    Loader b(data_config(workers), options(d.sources, LoaderMode::kTrain, 4));
    b.restore(mid);
    CHECK(b.epoch() == 0);
    CHECK(b.batches_in_epoch() == 3);
    check_same(rest_a, epoch(b));
    Loader c(data_config(workers), options(d.sources, LoaderMode::kTrain, 4));
    c.restore(end);
    CHECK(c.epoch() == 1);
    const auto next_epoch_c = c.next();
    REQUIRE(next_epoch_c);
    CHECK(next_epoch_c->keys == next_epoch_a->keys);
    CHECK(torch::equal(next_epoch_c->images, next_epoch_a->images));
  }

  auto other = options(d.sources, LoaderMode::kTrain, 8);
  Loader wrong(data_config(0), other);
  CHECK_THROWS_WITH(wrong.restore(mid), Catch::Contains("batch_size"));
  CHECK_THROWS_WITH(wrong.restore("{not json"), Catch::Contains("corrupt loader state"));
}

TEST_CASE("loader: tokens come from the tokenizer, labels can be required") {
  Dataset d;
  auto tok = std::make_shared<ByteTokenizer>();
  auto o = options(d.sources, LoaderMode::kEval, 16);
  o.tokenizer = tok;
  o.context_length = 7;
  Loader loader(data_config(2), o);
  const auto b = loader.next();
  REQUIRE(b);
  CHECK(b->tokens.sizes() == torch::IntArrayRef({16, 7}));
  CHECK(b->tokens.dtype() == torch::kInt64);
  for (int64_t i = 0; i < b->size(); ++i) {
    const auto expect = tok->tokenize(b->captions[static_cast<size_t>(i)], 7);
    for (int64_t j = 0; j < 7; ++j) {
      CHECK(b->tokens[i][j].item<int64_t>() == expect[static_cast<size_t>(j)]);
    }
  }

  // Labels from .cls members and from integer captions; a sample with neither is skipped.
  write_file(d.dir.file("labels.csv"), "filepath,title\nimg0.png,3\nimg1.png,7\nimg2.png,cat\n");
  auto labelled = options({d.dir.file("s0.tar"), d.dir.file("labels.csv")}, LoaderMode::kEval, 64);
  labelled.require_labels = true;
  labelled.require_captions = false;
  auto comma = data_config(0);
  comma.csv_separator = ",";
  Loader l(comma, labelled);
  const auto all = epoch(l);
  REQUIRE(all.size() == 1);
  REQUIRE(all[0].size() == 12);
  CHECK(all[0].labels[9].item<int64_t>() == 9);
  CHECK(all[0].labels[10].item<int64_t>() == 3);
  CHECK(all[0].labels[11].item<int64_t>() == 7);
  CHECK(l.stats().skipped_by_reason == std::map<std::string, int64_t>({{"missing_label", 1}}));
}

TEST_CASE("loader: ranks read disjoint parts and make equal numbers of training batches") {
  TempDir dir("dist");
  const int sizes[] = {5, 6, 7, 8};
  for (int s = 0; s < 4; ++s) {
    write_valid_shard(dir.file(fmt::format("s{}.tar", s)), fmt::format("s{}", s), sizes[s]);
  }
  const std::vector<std::string> sources = {dir.file("s{0..3}.tar")};
  for (LoaderMode mode : {LoaderMode::kTrain, LoaderMode::kEval}) {
    std::vector<std::vector<std::string>> per_rank;
    std::vector<size_t> batches;
    for (int rank = 0; rank < 2; ++rank) {
      auto o = options(sources, mode, 3);
      o.rank = rank;
      o.world_size = 2;
      Loader l(data_config(1), o);
      const std::optional<int64_t> expected = l.epoch_batches();
      const auto e = epoch(l);
      batches.push_back(e.size());
      if (mode == LoaderMode::kTrain) {
        REQUIRE(expected);
        CHECK(static_cast<size_t>(*expected) == e.size());
      } else {
        CHECK_FALSE(expected);
      }
      per_rank.push_back(keys(e));
    }
    std::set<std::string> r0(per_rank[0].begin(), per_rank[0].end());
    for (const auto& k : per_rank[1]) {
      CHECK(r0.count(k) == 0);
    }
    if (mode == LoaderMode::kTrain) {
      CHECK(batches[0] == batches[1]);
    } else {
      CHECK(per_rank[0].size() + per_rank[1].size() == 26);
    }
  }
}

TEST_CASE("loader: with fewer shards than ranks, samples are split, and empty ranks fail at start") {
  TempDir dir("dist2");
  write_valid_shard(dir.file("one.tar"), "k", 9);
  std::set<std::string> seen;
  for (int rank = 0; rank < 3; ++rank) {
    auto o = options({dir.file("one.tar")}, LoaderMode::kEval, 10);
    o.rank = rank;
    o.world_size = 3;
    Loader l(data_config(0), o);
    const auto k = keys(epoch(l));
    CHECK(k.size() == 3);
    seen.insert(k.begin(), k.end());
  }
  CHECK(seen.size() == 9);

  write_valid_shard(dir.file("two.tar"), "k", 2);
  auto o = options({dir.file("two.tar")}, LoaderMode::kEval, 1);
  o.rank = 0;
  o.world_size = 3;
  CHECK_THROWS_WITH(Loader(data_config(0), o), Catch::Contains("rank 2 of 3 would get 0"));
  auto t = options({dir.file("one.tar")}, LoaderMode::kTrain, 4);
  t.world_size = 3;
  CHECK_THROWS_WITH(Loader(data_config(0), t), Catch::Contains("needs at least 4"));
}

TEST_CASE("loader: a source without any valid sample is an error naming it") {
  Dataset d;
  std::vector<ShardSample> bad;
  for (int i = 0; i < 4; ++i) {
    bad.push_back({fmt::format("z{}", i), {{".jpg", "garbage"}, {".txt", "x"}}});
  }
  write_shard(d.dir.file("bad.tar"), bad);
  for (int workers : {0, 2}) {
    INFO("workers " << workers);
    Loader only_bad(data_config(workers), options({d.dir.file("bad.tar")}, LoaderMode::kEval, 2));
    CHECK_THROWS_WITH(only_bad.next(),
                      Catch::Contains("bad.tar") && Catch::Contains("no valid sample"));
    auto mixed = d.sources;
    mixed.push_back(d.dir.file("bad.tar"));
    Loader l(data_config(workers), options(mixed, LoaderMode::kEval, 64));
    CHECK_THROWS_WITH(epoch(l), Catch::Contains("bad.tar"));
  }
  CHECK_THROWS_WITH(
      Loader(data_config(0), options({d.dir.file("nope/{0..1}.tar")}, LoaderMode::kEval, 2)),
      Catch::Contains("nope/0.tar"));
  CHECK_THROWS_WITH(
      Loader(data_config(0), options({d.dir.file("{0..1.tar")}, LoaderMode::kEval, 2)),
      Catch::Contains("unbalanced"));
  // Fewer valid samples than one training batch: the epoch cannot make a batch.
  Loader tiny(data_config(0), options(d.sources, LoaderMode::kTrain, 64));
  CHECK_THROWS_WITH(tiny.next(), Catch::Contains("produced no batch"));
}

TEST_CASE("loader: a sample whose processing throws is skipped and counted, not fatal") {
  // A tokenizer that fails on one caption stands in for any per-sample failure.
  struct FailingTokenizer : ByteTokenizer {
    std::vector<int64_t> encode(const std::string& text) const override {
      if (text == "a 3") {
        throw std::runtime_error("tokenizer exploded on 'a 3'");
      }
      return ByteTokenizer::encode(text);
    }
  };
  TempDir dir("throwing");
  write_valid_shard(dir.file("s.tar"), "a", 6);
  for (int workers : {0, 2}) {
    INFO("workers " << workers);
    auto o = options({dir.file("s.tar")}, LoaderMode::kEval, 4);
    o.tokenizer = std::make_shared<FailingTokenizer>();
    o.context_length = 8;
    Loader l(data_config(workers), o);
    const auto k = keys(epoch(l));
    CHECK(k.size() == 5);
    CHECK(std::find(k.begin(), k.end(), dir.file("s.tar") + ":a_0003") == k.end());
    CHECK(l.stats().skipped_by_reason == std::map<std::string, int64_t>({{"sample_error", 1}}));
  }
}

TEST_CASE("loader: with several ranks, a part with few valid samples is not all bad") {
  // Shard "few": 1 valid sample, 3 corrupt images and 6 keys without an image (which the
  // per-shard count does not include). Mixed by the shuffle buffer across the repeated passes,
  // such a part gives long runs of skips although it has a valid sample.
  TempDir dir("few");
  std::vector<ShardSample> few;
  few.push_back({"f_valid", {{".png", pattern_png(8, 8, 1)}, {".txt", "the valid one"}}});
  for (int i = 0; i < 3; ++i) {
    few.push_back({fmt::format("f_bad{}", i), {{".jpg", "garbage"}, {".txt", "x"}}});
  }
  for (int i = 0; i < 6; ++i) {
    few.push_back({fmt::format("f_noimage{}", i), {{".txt", "no image"}}});
  }
  write_shard(dir.file("few.tar"), few);
  write_valid_shard(dir.file("good.tar"), "g", 10);
  const std::vector<std::string> sources = {dir.file("few.tar"), dir.file("good.tar")};
  for (int64_t shuffle : {0, 64}) {
    for (int workers : {0, 2}) {
      for (int rank = 0; rank < 2; ++rank) {
        INFO("shuffle " << shuffle << ", workers " << workers << ", rank " << rank);
        auto o = options(sources, LoaderMode::kTrain, 2);
        o.rank = rank;
        o.world_size = 2;
        Loader l(data_config(workers, shuffle), o);
        for (int e = 0; e < 3; ++e) {
          std::vector<Batch> batches;
          REQUIRE_NOTHROW(batches = epoch(l));
          CHECK(static_cast<int64_t>(batches.size()) == *l.epoch_batches());
        }
      }
    }
  }

  // A part without any valid sample is an error once a whole pass of it was skipped.
  std::vector<ShardSample> bad;
  for (int i = 0; i < 5; ++i) {
    bad.push_back({fmt::format("z{}", i), {{".jpg", "garbage"}, {".txt", "x"}}});
  }
  bad.push_back({"z_noimage", {{".txt", "no image"}}});
  write_shard(dir.file("bad.tar"), bad);
  for (int64_t shuffle : {0, 64}) {
    INFO("shuffle " << shuffle);
    int failed = 0;
    for (int rank = 0; rank < 2; ++rank) {
      auto o = options({dir.file("bad.tar"), dir.file("good.tar")}, LoaderMode::kTrain, 2);
      o.rank = rank;
      o.world_size = 2;
      Loader l(data_config(0, shuffle), o);
      try {
        epoch(l);
      } catch (const duet::Error& e) {
        ++failed;
        CHECK_THAT(e.what(),
                   Catch::Contains(fmt::format("rank {} of 2 found no valid sample", rank)) &&
                       Catch::Contains("6 samples, all skipped"));
      }
    }
    CHECK(failed == 1);  // the rank that holds bad.tar in the first epoch
  }
}

TEST_CASE("loader: in evaluation, a rank's part may hold only bad samples of a source") {
  // Two shards for three ranks: split by sample. Rank 1 gets sample 1 of "mixed" (the bad one)
  // and valid samples of "good"; the source has a valid sample on rank 0.
  TempDir dir("evalparts");
  write_shard(dir.file("mixed.tar"),
              {{"m_valid", {{".png", pattern_png(8, 8, 1)}, {".txt", "fine"}}},
               {"m_bad", {{".jpg", "garbage"}, {".txt", "broken"}}}});
  write_valid_shard(dir.file("good.tar"), "g", 6);
  std::set<std::string> seen;
  for (int rank = 0; rank < 3; ++rank) {
    INFO("rank " << rank);
    auto o = options({dir.file("mixed.tar"), dir.file("good.tar")}, LoaderMode::kEval, 4);
    o.rank = rank;
    o.world_size = 3;
    Loader l(data_config(0), o);
    std::vector<Batch> batches;
    REQUIRE_NOTHROW(batches = epoch(l));
    const auto k = keys(batches);
    seen.insert(k.begin(), k.end());
  }
  CHECK(seen.size() == 7);
  CHECK(seen.count(dir.file("mixed.tar") + ":m_valid") == 1);
}

namespace {

// Gzips `from` into `to` (a .tar.gz shard, as `tar czf` would write it).
void gzip_file(const std::string& from, const std::string& to) {
  std::ifstream in(from, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  gzFile out = gzopen(to.c_str(), "wb");
  REQUIRE(out != nullptr);
  REQUIRE(gzwrite(out, bytes.data(), static_cast<unsigned>(bytes.size())) ==
          static_cast<int>(bytes.size()));
  gzclose(out);
}

}  // namespace

TEST_CASE("loader: gzip-compressed shards read like plain ones") {
  TempDir dir("gz");
  write_valid_shard(dir.file("s.tar"), "k", 7);
  gzip_file(dir.file("s.tar"), dir.file("s.tar.gz"));
  gzip_file(dir.file("s.tar"), dir.file("s.tgz"));
  Loader plain(data_config(0), options({dir.file("s.tar")}, LoaderMode::kEval, 4));
  const auto expected = epoch(plain);
  for (const char* name : {"s.tar.gz", "s.tgz"}) {
    INFO(name);
    Loader l(data_config(2), options({dir.file(name)}, LoaderMode::kEval, 4));
    const auto got = epoch(l);
    REQUIRE(got.size() == expected.size());
    for (size_t i = 0; i < got.size(); ++i) {
      CHECK(got[i].captions == expected[i].captions);
      CHECK(torch::equal(got[i].images, expected[i].images));
    }
    CHECK(l.stats().samples == 7);
    CHECK(l.stats().skipped == 0);
  }
}

TEST_CASE("loader: several sources of different kinds are mixed into one shuffled pool") {
  // A tar pattern, a comma CSV (with a byte order mark and quoted captions) and a directory of
  // gzipped shards: every sample of each is read once per epoch, and training batches mix them.
  TempDir dir("mix");
  write_valid_shard(dir.file("a0.tar"), "a", 12);
  write_valid_shard(dir.file("a1.tar"), "a1", 12);
  std::string csv =
      "\xEF\xBB\xBF"
      "filepath,title\n";
  std::filesystem::create_directories(dir.path() / "img");
  for (int i = 0; i < 24; ++i) {
    write_file(dir.file(fmt::format("img/b{}.png", i)), pattern_png(16, 18, 60 + i));
    csv += fmt::format("img/b{}.png,\"b {}, from the CSV\"\n", i, i);
  }
  write_file(dir.file("b.csv"), csv);
  std::filesystem::create_directories(dir.path() / "c");
  write_valid_shard(dir.file("c.tar"), "c", 24);
  gzip_file(dir.file("c.tar"), dir.file("c/000.tar.gz"));
  const std::vector<std::string> sources = {dir.file("a{0..1}.tar"), dir.file("b.csv"),
                                            dir.file("c")};
  auto comma = data_config(2, 32);
  comma.csv_separator = ",";

  Loader eval(comma, options(sources, LoaderMode::kEval, 16));
  const auto in_order = keys(epoch(eval));
  REQUIRE(in_order.size() == 72);
  CHECK(in_order[0] == dir.file("a0.tar") + ":a_0000");
  CHECK(in_order[24] == dir.file("b.csv") + ":2");
  CHECK(in_order[71] == dir.file("c/000.tar.gz") + ":c_0023");

  Loader train(comma, options(sources, LoaderMode::kTrain, 8));
  const auto batches = epoch(train);
  REQUIRE(batches.size() == 9);
  const auto shuffled = keys(batches);
  CHECK(std::set<std::string>(shuffled.begin(), shuffled.end()) ==
        std::set<std::string>(in_order.begin(), in_order.end()));
  CHECK(shuffled != in_order);
  int mixed_batches = 0;
  for (const auto& b : batches) {
    std::set<char> kinds;  // 'a', 'b' or 'c', from the caption
    for (const auto& caption : b.captions) {
      kinds.insert(caption[0]);
    }
    mixed_batches += kinds.size() > 1;
  }
  CHECK(mixed_batches >= 5);
  CHECK(std::count_if(shuffled.begin(), shuffled.end(), [](const std::string& k) {
          return k.find("b.csv:") != std::string::npos;
        }) == 24);
  CHECK(batches[0].captions.size() == 8);
}
