// `duet bench loss`: forward + backward time and peak memory of the contrastive loss
// implementations, printed as a Markdown table (docs/benchmarks.md holds the results).
// Every implementation is measured in forked child processes, so no measurement inherits
// another's heap, and the parent never runs LibTorch work (no OpenMP pool crosses a fork) and
// never touches CUDA (a CUDA context does not survive fork(); each child makes its own).
// On the CPU (--device cpu):
//   time:   a child runs one warm-up, then --repeats timed forward + backward passes (median);
//   memory: a child with glibc's mmap threshold fixed at 128 KiB (freed blocks go straight back
//           to the kernel) runs one warm-up, resets its peak RSS (/proc/self/clear_refs), runs
//           once more and reports peak RSS minus the RSS before that run (inputs resident,
//           no gradients yet: the gradients it allocates count).
// On a GPU (--device cuda), one child per implementation:
//   memory: after a warm-up, the caching allocator's peak of allocated bytes during one pass
//           minus the bytes allocated before it (inputs resident, gradients counted);
//   time:   --repeats passes, each timed by CUDA events around it on the stream (median).
#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <c10/core/CachingDeviceAllocator.h>
#include <c10/core/Event.h>
#include <c10/core/impl/VirtualGuardImpl.h>
#include <fmt/format.h>
#include <torch/cuda.h>
#include <torch/torch.h>
#include <CLI/CLI.hpp>

#include "cli/app.h"
#include "common/dtype_names.h"
#include "common/error.h"
#include "common/torch_runtime.h"
#include "config/config.h"
#include "losses/contrastive_loss.h"
#include "losses/implementation.h"

namespace duet::cli {
namespace {

struct LossBenchOptions {
  int64_t n = 4096;
  int64_t m = 0;  // 0: same as n (one process)
  int64_t dim = 512;
  std::string type = "clip";
  std::vector<std::string> impls = {"reference", "tiled"};
  int64_t repeats = 5;
  int64_t tile = 256;
  int threads = 0;
  std::string dtype = "float32";
  int64_t seed = 0;
  std::string device = "cpu";
};

enum class Measure { kTime, kMemory };

struct Measurement {
  bool ok = false;
  double ms = 0.0;        // kTime: median forward + backward
  double peak_mib = 0.0;  // kMemory: peak RSS above the RSS before the run
  double loss = 0.0;
  std::string error;
};

// --dtype of the embeddings.
torch::ScalarType embedding_dtype(const std::string& name) {
  return parse_dtype_option("--dtype", name, {torch::kFloat32, torch::kFloat64, torch::kBFloat16});
}

config::LossImplementation parse_implementation(const std::string& impl) {
  const auto parsed = config::parse<config::LossImplementation>(impl);
  if (!parsed) {
    fail(ErrorKind::kUsage, "bench loss: --impl '{}' is not one of {}", impl,
         config::enum_rule<config::LossImplementation>().describe());
  }
  return *parsed;
}

// VmRSS or VmHWM of this process in KiB, from /proc/self/status.
int64_t status_kib(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      return std::stoll(line.substr(field.size() + 1));
    }
  }
  fail("cannot read {} from /proc/self/status", field);
}

// Resets this process's peak RSS (VmHWM) to its current RSS (Linux 4.0+).
void reset_peak_rss() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  DUET_CHECK(out.good(), "cannot reset the peak RSS through /proc/self/clear_refs");
}

// The leaves one forward + backward differentiates: embeddings, log temperature, bias.
struct BenchInputs {
  losses::ContrastiveBatch batch;
  std::vector<torch::Tensor> leaves;
  torch::Tensor logit_scale, logit_bias;
};

// The same values on every device: drawn on the CPU from --seed, then moved.
BenchInputs make_inputs(const LossBenchOptions& o, const torch::Device& device) {
  torch::manual_seed(static_cast<uint64_t>(o.seed));
  const auto dtype = embedding_dtype(o.dtype);
  const int64_t m = o.m > 0 ? o.m : o.n;
  auto embeddings = [&](int64_t rows) {
    const torch::Tensor x = torch::randn({rows, o.dim});
    // [rows, D], L2-normalised
    return (x / x.norm(2, 1, true)).to(device, dtype).requires_grad_();
  };
  BenchInputs in;
  const torch::Tensor image_all = embeddings(m);
  const torch::Tensor text_all = embeddings(m);
  if (m == o.n) {
    in.batch = losses::ContrastiveBatch::single_process(image_all, text_all);
  } else {
    // Rank 0's view of an m-row global batch: its first n rows against all of them.
    in.batch = {image_all.narrow(0, 0, o.n), text_all.narrow(0, 0, o.n), image_all, text_all, 0};
  }
  const bool siglip = o.type == "siglip";
  in.logit_scale =
      torch::tensor(siglip ? std::log(10.0) : std::log(1 / 0.07)).to(device).requires_grad_();
  if (siglip) {
    in.logit_bias = torch::tensor(-10.0).to(device).requires_grad_();
  }
  in.leaves = {image_all, text_all, in.logit_scale};
  if (siglip) {
    in.leaves.push_back(in.logit_bias);
  }
  return in;
}

void drop_grads(BenchInputs& in) {
  for (torch::Tensor& leaf : in.leaves) {
    leaf.mutable_grad().reset();
  }
}

// One forward + backward, from no gradients; returns the loss (not read: on a GPU the work is
// only queued).
torch::Tensor forward_backward(BenchInputs& in, const config::LossConfig& config) {
  drop_grads(in);
  const torch::Tensor loss =
      losses::contrastive_loss(in.batch, in.logit_scale, in.logit_bias, config);
  loss.backward();
  return loss.detach();
}

double step(BenchInputs& in, const config::LossConfig& config) {
  return forward_backward(in, config).item<double>();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t k = values.size();
  return k % 2 == 1 ? values[k / 2] : 0.5 * (values[k / 2 - 1] + values[k / 2]);
}

config::LossConfig loss_config(const LossBenchOptions& o, const std::string& impl) {
  config::LossConfig config;
  config.type = *config::parse<config::LossType>(o.type);  // CLI11 checked the spelling
  config.implementation = parse_implementation(impl);
  config.tile_size = o.tile;
  return config;
}

// Runs in the child, on CUDA device 0: memory from the caching allocator's statistics, time from
// CUDA events on the current stream. Device-generic c10 calls: no CUDA header needed.
Measurement measure_cuda(const LossBenchOptions& o, const std::string& impl) {
  if (!torch::cuda::is_available()) {
    fail("bench loss --device cuda: LibTorch sees no CUDA device (driver, CUDA_VISIBLE_DEVICES)");
  }
  const torch::Device device(torch::kCUDA, 0);
  const config::LossConfig config = loss_config(o, impl);
  BenchInputs in = make_inputs(o, device);
  Measurement r;
  r.loss = step(in, config);  // warm-up: cuBLAS handles, kernels loaded, allocator pools
  c10::DeviceAllocator* allocator = c10::getDeviceAllocator(torch::kCUDA);
  constexpr auto kAll = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
  drop_grads(in);  // the measured pass allocates them anew: they count as its memory
  torch::cuda::synchronize();
  const int64_t before = allocator->getDeviceStats(0).allocated_bytes[kAll].current;
  allocator->resetPeakStats(0);
  step(in, config);
  const int64_t peak = allocator->getDeviceStats(0).allocated_bytes[kAll].peak;
  r.peak_mib = static_cast<double>(peak - before) / (1024.0 * 1024.0);

  const c10::impl::VirtualGuardImpl guard(torch::kCUDA);
  const c10::Stream stream = guard.getStream(device);
  std::vector<double> ms;
  for (int64_t i = 0; i < o.repeats; ++i) {
    c10::Event start(torch::kCUDA, c10::EventFlag::BACKEND_DEFAULT);
    c10::Event end(torch::kCUDA, c10::EventFlag::BACKEND_DEFAULT);
    start.record(stream);
    forward_backward(in, config);
    end.record(stream);
    end.synchronize();
    ms.push_back(start.elapsedTime(end));
  }
  r.ms = median(ms);
  r.ok = true;
  return r;
}

// Runs in the child.
Measurement measure(const LossBenchOptions& o, const std::string& impl, Measure what) {
  if (what == Measure::kMemory) {
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);  // also pins the threshold (no dynamic growth)
    mallopt(M_TRIM_THRESHOLD, 128 * 1024);
  }
  set_num_threads(o.threads);
  const config::LossConfig config = loss_config(o, impl);
  BenchInputs in = make_inputs(o, torch::kCPU);
  Measurement r;
  r.loss = step(in, config);  // warm-up: thread pools, BLAS buffers, first-touch of the inputs
  if (what == Measure::kMemory) {
    drop_grads(in);  // the measured pass allocates them anew: they count as its memory
    const int64_t before = status_kib("VmRSS");
    reset_peak_rss();
    step(in, config);
    r.peak_mib = static_cast<double>(status_kib("VmHWM") - before) / 1024.0;
  } else {
    std::vector<double> ms;
    for (int64_t i = 0; i < o.repeats; ++i) {
      const auto start = std::chrono::steady_clock::now();
      step(in, config);
      ms.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
              .count());
    }
    r.ms = median(ms);
  }
  r.ok = true;
  return r;
}

// Forks, measures in the child, returns what it reported through a pipe.
Measurement measure_in_child(const LossBenchOptions& o, const std::string& impl, Measure what) {
  int fds[2];
  DUET_CHECK(pipe(fds) == 0, "bench: pipe failed");
  std::cout.flush();
  std::cerr.flush();
  const pid_t pid = fork();
  DUET_CHECK(pid >= 0, "bench: fork failed");
  if (pid == 0) {
    close(fds[0]);
    std::string report;
    try {
      const Measurement r = o.device == "cuda" ? measure_cuda(o, impl) : measure(o, impl, what);
      report = fmt::format("ok {:.17g} {:.17g} {:.17g}\n", r.ms, r.peak_mib, r.loss);
    } catch (const std::exception& e) {
      std::string message = e.what();
      std::replace(message.begin(), message.end(), '\n', ' ');
      report = "error " + message + "\n";
    }
    const ssize_t written = write(fds[1], report.data(), report.size());
    close(fds[1]);
    _exit(written == static_cast<ssize_t>(report.size()) ? 0 : 1);
  }
  close(fds[1]);
  std::string text;
  char buffer[4096];
  ssize_t got;
  while ((got = read(fds[0], buffer, sizeof buffer)) > 0) {
    text.append(buffer, static_cast<size_t>(got));
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);

  Measurement r;
  std::istringstream in(text);
  std::string word;
  in >> word;
  if (word == "ok") {
    in >> r.ms >> r.peak_mib >> r.loss;
    r.ok = true;
  } else if (word == "error") {
    std::getline(in, r.error);
  } else if (WIFSIGNALED(status)) {
    r.error = fmt::format("child killed by signal {}{}", WTERMSIG(status),
                          WTERMSIG(status) == SIGKILL ? " (out of memory?)" : "");
  } else {
    r.error = fmt::format("child exited with status {}", WEXITSTATUS(status));
  }
  return r;
}

void run_loss_bench(const LossBenchOptions& o) {
  if (o.n < 1 || o.dim < 1 || o.repeats < 1 || o.tile < 1) {
    fail(ErrorKind::kUsage, "bench loss: --n, --dim, --repeats and --tile must be >= 1");
  }
  if (o.m != 0 && o.m < o.n) {
    fail(ErrorKind::kUsage, "bench loss: --m ({}) must be >= --n ({})", o.m, o.n);
  }
  const torch::ScalarType dtype = embedding_dtype(o.dtype);  // a usage error when unknown
  const bool cuda = o.device == "cuda";
  // A Device value only: naming cuda:0 here initialises nothing (the parent stays CUDA-free).
  const torch::Device device = cuda ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  for (const std::string& impl : o.impls) {
    config::LossConfig config;
    config.implementation = parse_implementation(impl);
    // Rejects 'fused' where it cannot run (no kernels, the CPU, float64).
    losses::select_implementation(config, device, dtype);
  }
  const int64_t m = o.m > 0 ? o.m : o.n;
  const std::string gathered =
      m == o.n ? "" : fmt::format(", local rows {} of a gathered batch of {}", o.n, m);
  if (cuda) {
    std::cout << fmt::format(
        "Contrastive loss ({}), forward + backward, CUDA device 0{}; time: CUDA events, median of "
        "{} after one warm-up; memory: the caching allocator's peak allocated bytes during one "
        "forward + backward above those allocated before it (inputs resident, gradients "
        "counted); each implementation in a fresh child process.\n\n",
        o.type, gathered, o.repeats);
  } else {
    std::cout << fmt::format(
        "Contrastive loss ({}), forward + backward, CPU, {} threads{}; time: median of {} after "
        "one warm-up; memory: peak RSS above the RSS before one forward + backward (inputs "
        "resident, gradients counted), each in a fresh child process.\n\n",
        o.type, o.threads > 0 ? std::to_string(o.threads) : "default", gathered, o.repeats);
  }
  std::cout
      << "| impl | loss | N | M | D | dtype | tile | fwd+bwd ms | peak extra MiB | loss value |\n"
         "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |\n";
  for (const std::string& impl : o.impls) {
    const Measurement time = measure_in_child(o, impl, Measure::kTime);
    // On a GPU one child measures both (the allocator's statistics are not disturbed by timing).
    const Measurement memory = cuda ? time : measure_in_child(o, impl, Measure::kMemory);
    const std::string tile = impl == "tiled" ? std::to_string(o.tile) : "-";
    if (!time.ok || !memory.ok) {
      std::cout << fmt::format("| {} | {} | {} | {} | {} | {} | {} | failed: {} | | |\n", impl,
                               o.type, o.n, m, o.dim, o.dtype, tile,
                               time.ok ? memory.error : time.error);
      continue;
    }
    std::cout << fmt::format("| {} | {} | {} | {} | {} | {} | {} | {:.1f} | {:.1f} | {:.6f} |\n",
                             impl, o.type, o.n, m, o.dim, o.dtype, tile, time.ms, memory.peak_mib,
                             time.loss);
    std::cout.flush();
  }
}

}  // namespace

void add_bench_command(CLI::App& root, Registry& registry) {
  CLI::App* bench = root.add_subcommand("bench", "Micro-benchmarks");
  bench->require_subcommand(1);

  auto o = std::make_shared<LossBenchOptions>();
  CLI::App* loss = bench->add_subcommand(
      "loss", "Forward + backward time and peak memory of the contrastive loss implementations");
  loss->add_option("--n", o->n, "Local rows (the batch in one process)")->capture_default_str();
  loss->add_option("--m", o->m, "Gathered rows M >= n (default: n, one process)");
  loss->add_option("--dim", o->dim, "Embedding dimension D")->capture_default_str();
  loss->add_option("--type", o->type, "clip or siglip")
      ->check(CLI::IsMember({"clip", "siglip"}))
      ->capture_default_str();
  loss->add_option("--impl", o->impls,
                   "Implementations, comma-separated: reference, tiled, fused (CUDA builds with "
                   "the kernels)")
      ->delimiter(',')
      ->capture_default_str();
  loss->add_option("--repeats", o->repeats, "Timed runs (median)")->capture_default_str();
  loss->add_option("--tile", o->tile, "Tile size of the tiled implementation")
      ->capture_default_str();
  loss->add_option("--threads", o->threads, "Intra-op threads (0: LibTorch's default)")
      ->capture_default_str();
  loss->add_option("--dtype", o->dtype, "float32, float64 or bfloat16")
      ->check(CLI::IsMember({"float32", "float64", "bfloat16"}))
      ->capture_default_str();
  loss->add_option("--seed", o->seed, "Seed of the random embeddings")->capture_default_str();
  loss->add_option("--device", o->device,
                   "cpu, or cuda (device 0; CUDA events for time, the caching allocator's peak "
                   "for memory)")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  registry.add(loss, [o] { run_loss_bench(*o); });
}

}  // namespace duet::cli
