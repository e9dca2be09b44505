// One rank of the distributed loss benchmark (scripts/bench_distributed.sh starts 1, 2 and 4 of
// these with scripts/launch_local.sh). Every rank holds the same per-rank batch of n random
// L2-normalised [n, D] image and text embeddings and runs, per repeat:
//   gather    all_gather_with_grad of both embeddings (forward: two all-gathers)
//   loss      the contrastive loss of its rows against the gathered [R·n, D] batch, forward
//   backward  loss backward, which ends in two reduce-scatters of the gathered gradients
// Ranks start each repeat together (barrier); rank 0 prints the medians as one JSON line.
// With --simulate R in a single process, the "gathered" batch is this rank's rows followed by
// ·n other leaf rows and no communication happens: the same per-rank compute as a rank of
// an R-rank job, the baseline that shows what gathering and reduce-scattering add.
//   dist_bench [--n 256] [--dim 512] [--type clip|siglip] [--impl tiled|reference]
//              [--repeats 10] [--threads 1] [--simulate R]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <torch/torch.h>

#include "common/error.h"
#include "common/logging.h"
#include "distributed/communicator.h"
#include "distributed/gather.h"
#include "distributed/launch.h"
#include "losses/contrastive_loss.h"

namespace duet::bench {
namespace {

struct Options {
  int64_t n = 256;
  int64_t dim = 512;
  std::string type = "clip";
  std::string impl = "tiled";
  int repeats = 10;
  int threads = 1;
  int simulate = 0;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    DUET_CHECK(i + 1 < argc, "{} needs a value", flag);
    const std::string value = argv[++i];
    if (flag == "--n") {
      o.n = std::stoll(value);
    } else if (flag == "--dim") {
      o.dim = std::stoll(value);
    } else if (flag == "--type") {
      o.type = value;
    } else if (flag == "--impl") {
      o.impl = value;
    } else if (flag == "--repeats") {
      o.repeats = std::stoi(value);
    } else if (flag == "--threads") {
      o.threads = std::stoi(value);
    } else if (flag == "--simulate") {
      o.simulate = std::stoi(value);
    } else {
      fail(ErrorKind::kUsage, "unknown option {}", flag);
    }
  }
  return o;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

int run(int argc, char** argv) {
  const Options o = parse(argc, argv);
  const auto launch = distributed::discover_launch(distributed::current_environment());
  log::init("warn", launch.rank);
  torch::set_num_threads(o.threads);
  config::DistributedConfig dist;
  dist.timeout_seconds = 120;
  auto comm = distributed::make_communicator(launch, dist, torch::kCPU);
  const int r = comm->rank();
  DUET_CHECK(o.simulate == 0 || comm->world_size() == 1, "--simulate runs in one process only");
  const int world = o.simulate > 0 ? o.simulate : comm->world_size();

  torch::manual_seed(static_cast<uint64_t>(r));
  auto embeddings = [&](int64_t rows = 0) {
    const torch::Tensor x = torch::randn({rows > 0 ? rows : o.n, o.dim});
    return (x / x.norm(2, 1, true)).requires_grad_();  // [n, D], L2-normalised
  };
  const torch::Tensor image = embeddings();
  const torch::Tensor text = embeddings();
  torch::Tensor other_images;  // --simulate: the other ranks' rows
  torch::Tensor other_texts;
  if (world > comm->world_size()) {
    other_images = embeddings((world - 1) * o.n);
    other_texts = embeddings((world - 1) * o.n);
  }
  const bool siglip = o.type == "siglip";
  const torch::Tensor scale =
      torch::tensor(siglip ? std::log(10.0) : std::log(1 / 0.07)).requires_grad_();
  torch::Tensor bias;
  if (siglip) {
    bias = torch::tensor(-10.0).requires_grad_();
  }
  config::LossConfig loss_config;
  loss_config.type = duet::config::parse<duet::config::LossType>(o.type).value();
  loss_config.implementation =
      duet::config::parse<duet::config::LossImplementation>(o.impl).value();

  std::vector<double> gather_ms;
  std::vector<double> loss_ms;
  std::vector<double> backward_ms;
  std::vector<double> total_ms;
  double loss_value = 0.0;
  for (int k = 0; k <= o.repeats; ++k) {  // k = 0 warms up
    for (const torch::Tensor& leaf : {image, text, scale, bias}) {
      if (leaf.defined()) {
        leaf.mutable_grad().reset();
      }
    }
    comm->barrier();
    const auto start = Clock::now();
    const torch::Tensor image_all = other_images.defined()
                                        ? torch::cat({image, other_images})
                                        : distributed::all_gather_with_grad(*comm, image);
    const torch::Tensor text_all = other_texts.defined()
                                       ? torch::cat({text, other_texts})
                                       : distributed::all_gather_with_grad(*comm, text);
    const double t_gather = ms_since(start);
    const auto loss_start = Clock::now();
    const losses::ContrastiveBatch batch{image, text, image_all, text_all, r * o.n};
    const torch::Tensor loss = losses::contrastive_loss(batch, scale, bias, loss_config);
    const double t_loss = ms_since(loss_start);
    const auto backward_start = Clock::now();
    loss.backward();
    const double t_backward = ms_since(backward_start);
    const double t_total = ms_since(start);
    if (k > 0) {
      gather_ms.push_back(t_gather);
      loss_ms.push_back(t_loss);
      backward_ms.push_back(t_backward);
      total_ms.push_back(t_total);
    }
    loss_value = loss.item<double>();
  }
  if (r == 0) {
    std::printf(
        "{\"world\": %d, \"backend\": \"%s\", \"n\": %lld, \"global\": %lld, \"dim\": %lld, "
        "\"type\": \"%s\", \"impl\": \"%s\", \"threads\": %d, \"repeats\": %d, "
        "\"gather_ms\": %.2f, \"loss_ms\": %.2f, \"backward_ms\": %.2f, \"total_ms\": %.2f, "
        "\"loss\": %.6f}\n",
        world, o.simulate > 0 ? "simulated" : comm->backend().c_str(), static_cast<long long>(o.n),
        static_cast<long long>(o.n * world), static_cast<long long>(o.dim), o.type.c_str(),
        o.impl.c_str(), o.threads, o.repeats, median(gather_ms), median(loss_ms),
        median(backward_ms), median(total_ms), loss_value);
    std::fflush(stdout);
  }
  comm->finish();
  return 0;
}

}  // namespace
}  // namespace duet::bench

int main(int argc, char** argv) {
  try {
    return duet::bench::run(argc, argv);
  } catch (const duet::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return e.exit_code();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
