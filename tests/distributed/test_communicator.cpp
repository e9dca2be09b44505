// In-process checks of the distributed pieces that need no second process: the single-process
// communicator and the identities it gives gather-with-grad and GradientSync, backend choice
// errors, heartbeat timing, and check_same_config's messages (through a communicator that
// plays back other ranks' texts).
#include <torch/torch.h>

#include <string>
#include <vector>

// LibTorch before Catch2: c10 defines a CHECK macro that Catch2's must replace.
#include <catch2/catch.hpp>

#include "common/error.h"
#include "config/key_values.h"
#include "config/loader.h"
#include "distributed/communicator.h"
#include "distributed/config_check.h"
#include "distributed/gather.h"
#include "distributed/gradient_sync.h"
#include "distributed/heartbeat.h"

namespace duet::distributed {
namespace {

// Rank `rank` of a world whose other members sent `texts` (texts[rank] is replaced by what this
// rank sends). Only all_gather_text is meaningful.
class PlaybackCommunicator final : public Communicator {
 public:
  PlaybackCommunicator(int rank, std::vector<std::string> texts)
      : rank_(rank), texts_(std::move(texts)) {}
  int rank() const override { return rank_; }
  int world_size() const override { return static_cast<int>(texts_.size()); }
  std::string backend() const override { return "playback"; }
  torch::Tensor all_gather(const torch::Tensor& local) override { return local; }
  void all_reduce_sum(torch::Tensor&) override {}
  torch::Tensor reduce_scatter_sum(const torch::Tensor& input) override { return input; }
  void broadcast(torch::Tensor&, int) override {}
  void barrier() override {}
  std::vector<std::string> all_gather_text(const std::string& text) override {
    auto all = texts_;
    all[static_cast<size_t>(rank_)] = text;
    return all;
  }
  void finish() override {}

 private:
  int rank_;
  std::vector<std::string> texts_;
};

// What check_same_config sends for `config` (captured through a playback world of one... of
// two, whose other rank echoes it).
std::string sent_text(const config::Config& config) {
  struct Capture final : public Communicator {
    std::string captured;
    int rank() const override { return 0; }
    int world_size() const override { return 2; }
    std::string backend() const override { return "capture"; }
    torch::Tensor all_gather(const torch::Tensor& t) override { return t; }
    void all_reduce_sum(torch::Tensor&) override {}
    torch::Tensor reduce_scatter_sum(const torch::Tensor& t) override { return t; }
    void broadcast(torch::Tensor&, int) override {}
    void barrier() override {}
    std::vector<std::string> all_gather_text(const std::string& text) override {
      captured = text;
      return {text, text};
    }
    void finish() override {}
  } capture;
  check_same_config(capture, config);
  return capture.captured;
}

config::Config load(const std::vector<std::string>& overrides = {}) {
  return config::load_string("{}", "<test>", overrides);
}

std::unique_ptr<Communicator> single() {
  config::DistributedConfig dist;
  return make_communicator(LaunchInfo{}, dist, torch::kCPU);
}

}  // namespace

TEST_CASE("single communicator: every collective is the identity") {
  auto comm = single();
  CHECK(comm->backend() == "single");
  CHECK(comm->rank() == 0);
  CHECK(comm->world_size() == 1);
  torch::Tensor x = torch::arange(6.0).reshape({3, 2});
  CHECK(torch::equal(comm->all_gather(x), x));
  CHECK(comm->all_gather_list(x).size() == 1);
  torch::Tensor y = x.clone();
  comm->all_reduce_sum(y);
  CHECK(torch::equal(y, x));
  CHECK(torch::equal(comm->reduce_scatter_sum(x), x));
  comm->broadcast(y, 0);
  CHECK_THROWS_WITH(comm->broadcast(y, 1), Catch::Contains("outside the world of 1 rank"));
  comm->barrier();
  CHECK(comm->all_gather_text("abc") == std::vector<std::string>{"abc"});
  comm->finish();
}

TEST_CASE("world size 1: gather-with-grad returns its input and GradientSync leaves gradients") {
  auto comm = single();
  torch::Tensor x = torch::randn({4, 3}, torch::requires_grad());
  torch::Tensor gathered = all_gather_with_grad(*comm, x);
  CHECK(gathered.unsafeGetTensorImpl() == x.unsafeGetTensorImpl());

  torch::Tensor p = torch::ones({2}, torch::requires_grad());
  torch::Tensor q = torch::ones({2}, torch::requires_grad());
  (p * 3).sum().backward();
  GradientSync sync(*comm, {p, q}, 25);
  sync.average_gradients();
  CHECK(torch::equal(p.grad(), torch::full({2}, 3.0)));
  CHECK_FALSE(q.grad().defined());
  broadcast_parameters(*comm, {p}, 25);
  CHECK(torch::equal(p, torch::ones({2})));
}

TEST_CASE("GradientSync buckets group tensors by size, dtype and device") {
  auto comm = single();
  std::vector<torch::Tensor> params = {torch::zeros({100}), torch::zeros({100}),
                                       torch::zeros({300000}),  // 1.2 MB: its own bucket at 1 MiB
                                       torch::zeros({10}, torch::kDouble),  // dtype change
                                       torch::zeros({10}, torch::kDouble)};
  CHECK(GradientSync(*comm, params, 1).bucket_count() == 3);
  CHECK(GradientSync(*comm, params, 25).bucket_count() == 2);
  CHECK_THROWS_WITH(GradientSync(*comm, params, 0), Catch::Contains("bucket_mb must be positive"));
}

TEST_CASE("backend choices that cannot work are config errors") {
  config::DistributedConfig dist;
  LaunchInfo two;
  two.world_size = 2;
  two.rank = 1;
  two.master_addr = "127.0.0.1";
  two.master_port = 1;
  dist.backend = config::Backend::kNone;
  try {
    make_communicator(two, dist, torch::kCPU);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::kConfig);
    CHECK_THAT(e.what(),
               Catch::Contains("distributed.backend 'none'") && Catch::Contains("started 2 ranks"));
  }
  dist.backend = config::Backend::kNccl;
  try {
    make_communicator(two, dist, torch::kCPU);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::kConfig);
    CHECK_THAT(e.what(), Catch::Contains("distributed.backend 'nccl'"));
  }
}

TEST_CASE("heartbeat timing fits the verdict inside the timeout") {
  using std::chrono::milliseconds;
  for (int64_t seconds : {1, 3, 5, 30, 300, 3600}) {
    const milliseconds timeout(seconds * 1000);
    const HeartbeatTiming t = HeartbeatTiming::for_timeout(timeout);
    INFO("timeout " << seconds << " s");
    CHECK(t.interval >= milliseconds(50));
    CHECK(t.interval <= milliseconds(1000));
    CHECK(t.stale + 3 * t.interval <= timeout);
    CHECK(t.suspect <= t.stale);
    CHECK(t.stale >= 3 * t.interval);
  }
}

TEST_CASE("config key_values flatten every key in declaration order") {
  const auto kv = config::key_values(load({"train.batch_size=64", "data.csv_separator=','"}));
  auto find = [&](const std::string& key) {
    for (const auto& [k, v] : kv) {
      if (k == key) {
        return v;
      }
    }
    return std::string("<absent>");
  };
  CHECK(kv.front().first == "model.name");
  CHECK(find("train.batch_size") == "64");
  CHECK(find("data.csv_separator") == ",");
  CHECK(find("data.mean") == "[0.48145466, 0.4578275, 0.40821073]");
  CHECK(find("model.logit_bias") == "false");
  CHECK(find("distributed.timeout_seconds") == "300");
  CHECK(find("tokenizer.path") == "\"\"");
  CHECK(find("data.train") == "[]");
  CHECK(find("model.vision.width") == "768");
}

TEST_CASE("check_same_config passes equal configs and names the keys that differ") {
  const config::Config mine = load();
  const std::string same = sent_text(mine);
  PlaybackCommunicator agree(0, {same, same, same});
  check_same_config(agree, mine);

  const std::string other = sent_text(load({"train.batch_size=32", "loss.tile_size=64"}));
  PlaybackCommunicator disagree(0, {"", other, same});
  try {
    check_same_config(disagree, mine);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::kConfig);
    const std::string message = e.what();
    CHECK_THAT(message, Catch::Contains("2 keys differ"));
    CHECK_THAT(message, Catch::Contains("loss.tile_size (256 on ranks 0, 2; 64 on rank 1)"));
    CHECK_THAT(message, Catch::Contains("train.batch_size (256 on ranks 0, 2; 32 on rank 1)"));
  }
}

TEST_CASE("check_same_config: keys one rank lacks, long lists and unreadable texts") {
  const config::Config mine = load();
  PlaybackCommunicator lacking(1, {R"([["model.name", ""], ["extra.key", "1"]])", ""});
  try {
    check_same_config(lacking, mine);
    FAIL("no error");
  } catch (const Error& e) {
    const std::string message = e.what();
    CHECK_THAT(message, Catch::Contains("extra.key (1 on rank 0; (missing) on rank 1)"));
    CHECK_THAT(message, Catch::Contains("more"));
  }
  PlaybackCommunicator garbled(0, {"", "not json"});
  CHECK_THROWS_WITH(check_same_config(garbled, mine),
                    Catch::Contains("rank 1 sent an unreadable config"));
}

}  // namespace duet::distributed
