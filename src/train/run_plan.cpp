// Planning a run (see run_plan.h).
#include "train/run_plan.h"

#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/log_rank.h"
#include "common/logging.h"
#include "common/torch_runtime.h"
#include "config/loader.h"
#include "data/source_set.h"
#include "distributed/config_check.h"
#include "train/trainer.h"

namespace fs = std::filesystem;

namespace duet::train {
namespace {

// Rank 0's planning outcome, as every rank receives it.
struct ResumeDecision {
  enum class Outcome { kFresh, kResume, kFailed };
  Outcome outcome = Outcome::kFresh;
  std::string checkpoint;                      // kResume: the checkpoint directory
  ErrorKind error_kind = ErrorKind::kRuntime;  // kFailed: rank 0's error, rethrown everywhere
  std::string error;

  nlohmann::json to_json() const {
    return {{"outcome", static_cast<int>(outcome)},
            {"checkpoint", checkpoint},
            {"error_kind", static_cast<int>(error_kind)},
            {"error", error}};
  }
  static ResumeDecision from_json(const nlohmann::json& json) {
    ResumeDecision d;
    d.outcome = static_cast<Outcome>(json.at("outcome").get<int>());
    d.checkpoint = json.at("checkpoint").get<std::string>();
    d.error_kind = static_cast<ErrorKind>(json.at("error_kind").get<int>());
    d.error = json.at("error").get<std::string>();
    return d;
  }
};

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) {
    fail("cannot write '{}'", path);
  }
}

// The checkpoint to resume from per checkpoint.resume, or nullopt for a fresh start.
std::optional<CheckpointInfo> find_resume_point(const config::CheckpointConfig& checkpoint,
                                                const CheckpointStore& store) {
  if (checkpoint.resume.empty()) {
    if (!store.list().empty()) {
      fail(ErrorKind::kConfig,
           "run directory '{}' already holds checkpoints; set checkpoint.resume: latest to "
           "continue it, or choose another train.run_name",
           fs::path(store.dir()).parent_path().string());
    }
    return std::nullopt;
  }
  if (checkpoint.resume == "latest") {
    auto found = store.latest_good();
    if (!found) {
      log::get("train")->info(
          "checkpoint.resume is 'latest' but '{}' has no good checkpoint yet: starting fresh",
          store.dir());
    }
    return found;
  }
  return CheckpointStore::validate(checkpoint.resume);
}

// Rank 0: prepares the run directory and decides where to resume from.
ResumeDecision decide_on_rank0(const config::Config& config, RunPlan& plan) {
  ResumeDecision decision;
  try {
    fs::create_directories(plan.run_dir);
    plan.store.emplace((fs::path(plan.run_dir) / "checkpoints").string(),
                       config.checkpoint.keep_last);
    plan.resume = find_resume_point(config.checkpoint, *plan.store);
    write_text((fs::path(plan.run_dir) / "config.yaml").string(), config::to_yaml(config));
    if (plan.resume) {
      decision.outcome = ResumeDecision::Outcome::kResume;
      decision.checkpoint = plan.resume->path;
    }
  } catch (const Error& e) {
    decision.outcome = ResumeDecision::Outcome::kFailed;
    decision.error_kind = e.kind();
    decision.error = e.what();
  } catch (const std::filesystem::filesystem_error& e) {
    decision.outcome = ResumeDecision::Outcome::kFailed;
    decision.error =
        fmt::format("cannot prepare the run directory '{}': {}", plan.run_dir, e.what());
  }
  return decision;
}

int64_t total_steps(const config::Config& config, int64_t micro_batch, int world_size) {
  if (config.train.steps > 0) {
    return config.train.steps;
  }
  data::CsvOptions csv{config.data.csv_separator, config.data.csv_img_key,
                       config.data.csv_caption_key};
  int64_t samples = 0;
  for (int64_t c : data::count_samples(data::resolve_sources(config.data.train, csv))) {
    samples += c;
  }
  const int64_t per_step = micro_batch * config.train.accum_steps * world_size;
  const int64_t steps_per_epoch = samples / per_step;
  DUET_CHECK(steps_per_epoch > 0,
             "data.train has {} samples: fewer than one optimiser step's batch of {} "
             "(train.batch_size)",
             samples, per_step);
  return steps_per_epoch * config.train.epochs;
}

}  // namespace

torch::Device training_device(config::DeviceChoice choice, const distributed::LaunchInfo& launch,
                              int cuda_devices) {
  if (choice == config::DeviceChoice::kCpu) {
    return torch::kCPU;
  }
  if (cuda_devices <= 0) {
    if (choice == config::DeviceChoice::kCuda) {
      fail(ErrorKind::kConfig,
           "train.device is 'cuda' but LibTorch sees no CUDA device (CUDA_VISIBLE_DEVICES, "
           "driver); use 'auto' or 'cpu'");
    }
    return torch::kCPU;
  }
  const int index =
      launch.is_distributed() ? distributed::cuda_device_index(launch, cuda_devices) : 0;
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

RunPlan plan_run(const config::Config& config, const TrainOptions& options) {
  const auto& train = config.train;
  RunPlan plan;
  set_num_threads(static_cast<int>(train.threads));

  // Ranks: one process unless a launcher's variables say otherwise (distributed/launch.h).
  plan.launch = distributed::discover_launch(distributed::current_environment());
  log::set_rank(plan.launch.rank);
  const int cuda_devices = train.device == config::DeviceChoice::kCpu
                               ? 0
                               : static_cast<int>(torch::cuda::device_count());
  plan.device = training_device(train.device, plan.launch, cuda_devices);
  plan.comm = distributed::make_communicator(plan.launch, config.distributed, plan.device);
  plan.rank = plan.comm->rank();
  plan.world_size = plan.comm->world_size();
  plan.writer = plan.rank == 0;
  plan.collective = plan.comm->backend() != "single";
  distributed::check_same_config(*plan.comm, config);
  if (train.batch_size % (int64_t{plan.world_size} * train.accum_steps) != 0) {
    fail(ErrorKind::kConfig,
         "train.batch_size {} must be divisible by the number of ranks ({}) x train.accum_steps "
         "({}): each rank encodes batch_size / ranks / accum_steps samples at a time",
         train.batch_size, plan.world_size, train.accum_steps);
  }
  plan.micro_batch = train.batch_size / plan.world_size / train.accum_steps;
  plan.total_steps = total_steps(config, plan.micro_batch, plan.world_size);

  plan.run_name = train.run_name.empty() ? options.default_run_name : train.run_name;
  plan.run_dir = (fs::path(train.output_dir) / plan.run_name).string();
  ResumeDecision decision;
  if (plan.writer) {
    decision = decide_on_rank0(config, plan);
  }
  if (plan.collective) {
    decision = ResumeDecision::from_json(
        nlohmann::json::parse(plan.comm->all_gather_text(decision.to_json().dump()).front()));
  }
  switch (decision.outcome) {
    case ResumeDecision::Outcome::kFailed:
      throw Error(decision.error_kind, decision.error);
    case ResumeDecision::Outcome::kResume:
      if (!plan.writer) {
        plan.resume = CheckpointStore::validate(decision.checkpoint);
      }
      break;
    case ResumeDecision::Outcome::kFresh:
      break;
  }
  if (plan.resume && plan.resume->step > plan.total_steps) {
    fail(ErrorKind::kConfig,
         "checkpoint '{}' is at step {}, past the {} steps this config trains (train.steps / "
         "train.epochs)",
         plan.resume->path, plan.resume->step, plan.total_steps);
  }
  return plan;
}

}  // namespace duet::train
