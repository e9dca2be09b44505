// One rank of the multi-process tests (test_distributed.cpp starts 2 to 4 of these with the
// torchrun-style variables). `dist_worker MODE`; results go to $DUET_TEST_OUT/rank<r>.txt, one
// "name value" per line, and errors to stderr with duet's exit codes.
//   collectives  every Communicator operation, GradientSync (including undefined gradients) and
//                broadcast_parameters against values computed locally
//   gradients    a tiny float64 ClipModel: loss and every parameter gradient of the gathered
//                per-rank losses against one process on the concatenated global batch, for
//                InfoNCE and SigLIP, reference and tiled
//   kill / stop  all-reduces in a loop; rank $DUET_TEST_VICTIM sends itself SIGKILL / SIGSTOP
//                after a few iterations (writing the time first); the others must be ended by
//                the heartbeat
//   leave        like kill, but the victim throws a runtime Error (its own failure, like a bad
//                data file) and leaves through the communicator's destructor
//   config       rank r sets the --set overrides in $DUET_TEST_SET_<r> (';'-separated), then
//                check_same_config
//   join         only joins and finishes (the test leaves a rank out)
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <torch/torch.h>

#include "common/error.h"
#include "common/logging.h"
#include "config/loader.h"
#include "data/loader.h"
#include "distributed/communicator.h"
#include "distributed/config_check.h"
#include "distributed/gather.h"
#include "distributed/gradient_sync.h"
#include "distributed/launch.h"
#include "losses/contrastive_loss.h"
#include "models/clip_model.h"
#include "models/model_test_util.h"
#include "train/optimizer.h"
#include "train/train_step.h"

namespace duet::test {
namespace {

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v == nullptr ? fallback : std::string(v);
}

class Results {
 public:
  explicit Results(int rank)
      : out_(env_or("DUET_TEST_OUT", ".") + "/rank" + std::to_string(rank) + ".txt") {}
  void put(const std::string& name, double value) {
    out_ << name << " " << fmt::format("{:.17g}", value) << "\n";
    out_.flush();
  }

 private:
  std::ofstream out_;
};

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Exact comparisons of small integer-valued results: 1 when equal, 0 otherwise.
double same(const torch::Tensor& a, const torch::Tensor& b) { return torch::equal(a, b) ? 1 : 0; }

void run_collectives(distributed::Communicator& comm, Results& results) {
  const int r = comm.rank();
  const int w = comm.world_size();
  const auto opts = torch::TensorOptions().dtype(torch::kDouble);

  // all_gather: rank r sends [2, 3] filled with r; expect blocks of 0, 1, ... in order.
  torch::Tensor local = torch::full({2, 3}, r, opts);
  torch::Tensor expected = torch::arange(w, opts).repeat_interleave(2).unsqueeze(1).expand({-1, 3});
  results.put("all_gather", same(comm.all_gather(local), expected));
  auto parts = comm.all_gather_list(local);
  results.put("all_gather_list", parts.size() == static_cast<size_t>(w) &&
                                         same(parts.back(), torch::full({2, 3}, w - 1, opts))
                                     ? 1
                                     : 0);

  // all_reduce_sum, in place, also on a non-contiguous view.
  torch::Tensor x = torch::arange(6, opts) + r;
  comm.all_reduce_sum(x);
  results.put("all_reduce_sum", same(x, torch::arange(6, opts) * w + w * (w - 1) / 2.0));
  torch::Tensor base = torch::zeros({3, 4}, opts);
  torch::Tensor column = base.select(1, 1);  // stride 4
  column.fill_(r + 1);
  comm.all_reduce_sum(column);
  results.put("all_reduce_sum_strided",
              same(base.select(1, 1), torch::full({3}, w * (w + 1) / 2.0, opts)));

  // reduce_scatter_sum: every rank sends rows [w*2, 2] = row index + rank; rank r keeps its two
  // rows of the sum.
  torch::Tensor rows = torch::arange(w * 2, opts).unsqueeze(1).expand({-1, 2}).contiguous() + r;
  torch::Tensor mine = comm.reduce_scatter_sum(rows);
  torch::Tensor want =
      (torch::arange(w * 2, opts).unsqueeze(1).expand({-1, 2}) * w + w * (w - 1) / 2.0)
          .narrow(0, r * 2, 2);
  results.put("reduce_scatter_sum", same(mine, want));

  // broadcast from the last rank.
  torch::Tensor b = torch::full({5}, r, opts);
  comm.broadcast(b, w - 1);
  results.put("broadcast", same(b, torch::full({5}, w - 1, opts)));
  comm.barrier();

  // all_gather_text with ranks' own strings, including bytes that need care.
  auto text_of = [](int i) { return "rank " + std::to_string(i) + std::string("\n\ttext\0x", 8); };
  const auto texts = comm.all_gather_text(text_of(r));
  bool texts_ok = texts.size() == static_cast<size_t>(w);
  for (int i = 0; texts_ok && i < w; ++i) {
    texts_ok = texts[static_cast<size_t>(i)] == text_of(i);
  }
  results.put("all_gather_text", texts_ok ? 1 : 0);

  // Different shapes on different ranks: every rank gets the same Error, nobody hangs.
  bool refused = false;
  try {
    comm.all_gather(torch::zeros({1 + r % 2, 3}, opts));
  } catch (const Error& e) {
    refused = std::string(e.what()).find("ranks passed different tensors") != std::string::npos;
  }
  results.put("shape_mismatch_refused", refused ? 1 : 0);

  // GradientSync: p0 has a gradient on rank 0 only, p1 on every rank, p2 on none; a bucket limit
  // of 1 MiB with a 2 MiB p3 gives several buckets.
  std::vector<torch::Tensor> params = {torch::zeros({4}, opts.requires_grad(true)),
                                       torch::zeros({2, 2}, opts.requires_grad(true)),
                                       torch::zeros({3}, opts.requires_grad(true)),
                                       torch::zeros({512, 512}, opts.requires_grad(true))};
  if (r == 0) {
    params[0].mutable_grad() = torch::full({4}, 8.0, opts);
  }
  params[1].mutable_grad() = torch::full({2, 2}, r + 1.0, opts);
  params[3].mutable_grad() = torch::full({512, 512}, r, opts);
  distributed::GradientSync sync(comm, params, 1);
  sync.average_gradients();
  results.put("sync_buckets", static_cast<double>(sync.bucket_count()));
  results.put("sync_partial", same(params[0].grad(), torch::full({4}, 8.0 / w, opts)));
  results.put("sync_all", same(params[1].grad(), torch::full({2, 2}, (w + 1) / 2.0, opts)));
  results.put("sync_none_undefined", params[2].grad().defined() ? 0 : 1);
  results.put("sync_large", same(params[3].grad(), torch::full({512, 512}, (w - 1) / 2.0, opts)));

  // broadcast_parameters: rank 0's values everywhere, float and double mixed.
  std::vector<torch::Tensor> tensors = {torch::full({3}, r, opts),
                                        torch::full({2}, r + 0.5, torch::kFloat)};
  distributed::broadcast_parameters(comm, tensors, 1);
  results.put("broadcast_parameters", same(tensors[0], torch::zeros({3}, opts)) *
                                          same(tensors[1], torch::full({2}, 0.5, torch::kFloat)));
}

// Normwise relative difference: max |got - want| / max(max |want|, floor).
double rel_diff(const torch::Tensor& got, const torch::Tensor& want, double floor = 1e-8) {
  const double scale = std::max(want.abs().max().item<double>(), floor);
  return (got - want).abs().max().item<double>() / scale;
}

void run_gradients(distributed::Communicator& comm, Results& results) {
  const int r = comm.rank();
  const int w = comm.world_size();
  const int64_t n = 3;  // rows per rank: odd, smaller than the tile
  const int64_t total = n * w;
  for (const std::string type : {"clip", "siglip"}) {
    for (const std::string impl : {"reference", "tiled"}) {
      config::ModelConfig model_config = models::test::tiny_config();
      if (type == "siglip") {
        model_config.logit_bias = true;
        model_config.init_logit_scale = std::log(10.0);
        model_config.text.causal = false;
        model_config.text.pool = config::TextPool::kLast;
      }
      // Different initial weights on every rank: broadcast_parameters must make them rank 0's.
      torch::manual_seed(7 + static_cast<uint64_t>(r));
      models::ClipModel model(model_config, models::test::tiny_tokenizer());
      model->to(torch::kDouble);
      std::vector<torch::Tensor> state = model->parameters();
      for (const auto& buffer : model->buffers()) {
        state.push_back(buffer);
      }
      distributed::broadcast_parameters(comm, state, 1);

      // The same global batch on every rank.
      torch::manual_seed(99);
      const torch::Tensor images = torch::randn({total, 3, 16, 16}, torch::kDouble);
      std::vector<int64_t> eot;
      for (int64_t i = 0; i < total; ++i) {
        eot.push_back(1 + (i * 5) % 11);
      }
      const torch::Tensor tokens = models::test::make_tokens(eot, 12);

      config::LossConfig loss_config;
      loss_config.type = config::parse<config::LossType>(type).value();
      loss_config.implementation = config::parse<config::LossImplementation>(impl).value();
      loss_config.tile_size = 5;  // several tiles, a ragged last one
      const torch::Tensor bias = model->logit_bias;

      // One process, the whole batch.
      model->zero_grad();
      const torch::Tensor single =
          losses::contrastive_loss(losses::ContrastiveBatch::single_process(
                                       model->encode_image(images), model->encode_text(tokens)),
                                   model->logit_scale, bias, loss_config);
      single.backward();
      std::vector<torch::Tensor> want;
      for (const auto& p : model->parameters()) {
        want.push_back(p.grad().clone());
      }

      // This rank's rows against the gathered batch, gradients averaged over ranks.
      model->zero_grad();
      const torch::Tensor image = model->encode_image(images.narrow(0, r * n, n));
      const torch::Tensor text = model->encode_text(tokens.narrow(0, r * n, n));
      losses::ContrastiveBatch batch{image, text, distributed::all_gather_with_grad(comm, image),
                                     distributed::all_gather_with_grad(comm, text), r * n};
      const torch::Tensor loss =
          losses::contrastive_loss(batch, model->logit_scale, bias, loss_config);
      loss.backward();
      distributed::GradientSync sync(comm, model->parameters(), 1);
      sync.average_gradients();
      torch::Tensor mean_loss = loss.detach().clone();
      comm.all_reduce_sum(mean_loss);
      mean_loss /= w;

      const std::string name = type + "_" + impl;
      results.put(name + "_loss_rel", rel_diff(mean_loss, single.detach(), 1e-300));
      double worst = 0.0;
      int64_t checked = 0;
      const auto params = model->parameters();
      for (size_t i = 0; i < params.size(); ++i) {
        if (!params[i].grad().defined()) {
          worst = 1.0;  // every parameter of this model receives a gradient
          continue;
        }
        worst = std::max(worst, rel_diff(params[i].grad(), want[i]));
        ++checked;
      }
      results.put(name + "_grad_rel", worst);
      results.put(name + "_params", static_cast<double>(checked));
      results.put(name + "_loss", single.item<double>());
    }
  }
}

// K optimiser steps (train_step's gradients, averaged over ranks, clipped, AdamW, logit-scale
// clamp) with 2 accumulated micro-batches per rank reach the same parameters as one process
// taking the same steps on the whole global batch without accumulation.
void run_steps(distributed::Communicator& comm, Results& results) {
  const int r = comm.rank();
  const int w = comm.world_size();
  const int64_t local = 4;  // rows per rank per step, as 2 micro-batches of 2
  const int64_t total = local * w;
  const int steps = 4;
  for (const std::string type : {"clip", "siglip"}) {
    config::ModelConfig model_config = models::test::tiny_config();
    if (type == "siglip") {
      model_config.logit_bias = true;
      model_config.init_logit_scale = std::log(10.0);
    }
    config::OptimConfig optim;
    optim.lr = 1e-3;
    optim.grad_clip_norm = 1.0;
    torch::manual_seed(21);
    models::ClipModel single(model_config, models::test::tiny_tokenizer());
    single->to(torch::kDouble);
    torch::manual_seed(22 + static_cast<uint64_t>(r));  // rank-dependent: the broadcast fixes it
    models::ClipModel ranked(model_config, models::test::tiny_tokenizer());
    ranked->to(torch::kDouble);
    std::vector<torch::Tensor> state = ranked->parameters();
    {
      torch::NoGradGuard no_grad;
      auto from = single->parameters();  // rank 0 copies the reference: all start equal
      if (r == 0) {
        for (size_t i = 0; i < state.size(); ++i) {
          state[i].copy_(from[i]);
        }
      }
    }
    distributed::broadcast_parameters(comm, state, 1);
    const auto single_opt = train::make_adamw(*single, optim);
    const auto ranked_opt = train::make_adamw(*ranked, optim);
    distributed::GradientSync sync(comm, ranked->parameters(), 1);

    train::StepOptions plain;
    plain.loss.type = config::parse<config::LossType>(type).value();
    plain.loss.implementation = config::LossImplementation::kTiled;
    plain.loss.tile_size = 3;
    train::StepOptions gathered = plain;
    gathered.gather.all_gather = [&](const torch::Tensor& t) {
      return distributed::all_gather_with_grad(comm, t);
    };
    gathered.gather.rank = r;
    double worst_loss = 0.0;
    for (int step = 0; step < steps; ++step) {
      torch::manual_seed(1000 + static_cast<uint64_t>(step));  // the same global batch everywhere
      data::Batch global;
      global.images = torch::randn({total, 3, 16, 16}, torch::kDouble);
      std::vector<int64_t> eot;
      for (int64_t i = 0; i < total; ++i) {
        eot.push_back(1 + (i * 3 + step) % 11);
      }
      global.tokens = models::test::make_tokens(eot, 12);

      single_opt->zero_grad();
      const torch::Tensor single_loss = train::accumulate_gradients(*single, {global}, plain);
      const double want = single_loss.item<double>();
      train::clip_gradients(single->parameters(), optim.grad_clip_norm, single_loss);
      single_opt->step();
      single->clamp_logit_scale(optim.logit_scale_max);

      std::vector<data::Batch> micro;
      for (int64_t k = 0; k < 2; ++k) {
        data::Batch b;
        b.images = global.images.narrow(0, r * local + 2 * k, 2);
        b.tokens = global.tokens.narrow(0, r * local + 2 * k, 2);
        micro.push_back(b);
      }
      ranked_opt->zero_grad();
      torch::Tensor loss =
          train::accumulate_gradients(*ranked, micro, gathered).reshape({1}).clone();
      sync.average_gradients();
      comm.all_reduce_sum(loss);
      worst_loss = std::max(worst_loss, std::abs(loss.item<double>() / w - want) / std::abs(want));
      train::clip_gradients(ranked->parameters(), optim.grad_clip_norm, loss / w);
      ranked_opt->step();
      ranked->clamp_logit_scale(optim.logit_scale_max);
    }
    double worst = 0.0;
    double moved = 0.0;
    const auto got = ranked->parameters();
    const auto want = single->parameters();
    for (size_t i = 0; i < got.size(); ++i) {
      worst = std::max(worst, rel_diff(got[i], want[i]));
    }
    // The steps changed the weights: the comparison is not of two untouched copies.
    torch::manual_seed(21);
    models::ClipModel initial(model_config, models::test::tiny_tokenizer());
    initial->to(torch::kDouble);
    const auto start = initial->parameters();
    for (size_t i = 0; i < got.size(); ++i) {
      moved = std::max(moved, rel_diff(want[i], start[i]));
    }
    results.put(type + "_steps_param_rel", worst);
    results.put(type + "_steps_loss_rel", worst_loss);
    results.put(type + "_steps_moved", moved);
  }
}

// signal 0: throw instead.
void run_fault(distributed::Communicator& comm, Results& results, int signal) {
  const int victim = std::stoi(env_or("DUET_TEST_VICTIM", "1"));
  torch::Tensor x = torch::ones({1000});
  for (int step = 0; step < 3000; ++step) {
    if (comm.rank() == victim && step == 10) {
      results.put("signal_time", wall_seconds());
      if (signal == 0) {
        fail("rank {} could not read its data (a failure of its own)", comm.rank());
      }
      ::raise(signal);
    }
    comm.all_reduce_sum(x);
    x.fill_(1);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  results.put("survived", 1);  // the heartbeat should have ended this process long before
}

void run_config(distributed::Communicator& comm) {
  std::vector<std::string> overrides;
  std::stringstream sets(env_or(("DUET_TEST_SET_" + std::to_string(comm.rank())).c_str(), ""));
  for (std::string item; std::getline(sets, item, ';');) {
    if (!item.empty()) {
      overrides.push_back(item);
    }
  }
  const config::Config config = config::load_string("{}", "<test>", overrides);
  distributed::check_same_config(comm, config);
}

int run(const std::string& mode) {
  const distributed::LaunchInfo launch =
      distributed::discover_launch(distributed::current_environment());
  log::init("warn", launch.rank);
  config::DistributedConfig dist;
  dist.backend = duet::config::Backend::kGloo;
  dist.timeout_seconds = std::stoll(env_or("DUET_TEST_TIMEOUT", "20"));
  auto comm = distributed::make_communicator(launch, dist, torch::kCPU);
  Results results(comm->rank());
  torch::set_num_threads(1);
  if (mode == "collectives") {
    run_collectives(*comm, results);
  } else if (mode == "gradients") {
    run_gradients(*comm, results);
  } else if (mode == "steps") {
    run_steps(*comm, results);
  } else if (mode == "kill") {
    run_fault(*comm, results, SIGKILL);
  } else if (mode == "stop") {
    run_fault(*comm, results, SIGSTOP);
  } else if (mode == "leave") {
    run_fault(*comm, results, 0);
  } else if (mode == "config") {
    run_config(*comm);
  } else if (mode != "join") {
    fail(ErrorKind::kUsage, "unknown mode '{}'", mode);
  }
  comm->finish();
  results.put("finished", 1);
  return 0;
}

}  // namespace
}  // namespace duet::test

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr,
                 "usage: dist_worker collectives|gradients|steps|kill|stop|leave|config|join\n");
    return 2;
  }
  try {
    return duet::test::run(argv[1]);
  } catch (const duet::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return e.exit_code();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "unexpected exception: %s\n", e.what());
    return 3;
  }
}
