#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>

#include <torch/torch.h>

#include "common/autocast.h"
#include "common/error.h"
#include "common/log_rank.h"
#include "common/logging.h"
#include "common/torch_runtime.h"
#include "config/loader.h"
#include "data/loader.h"
#include "data/source_set.h"
#include "distributed/communicator.h"
#include "distributed/config_check.h"
#include "distributed/gather.h"
#include "distributed/gradient_sync.h"
#include "distributed/launch.h"
#include "duet/build_info.h"
#include "export/model_io.h"
#include "models/clip_model.h"
#include "text/tokenizer.h"
#include "train/checkpoint_store.h"
#include "train/metrics_jsonl.h"
#include "train/metrics_plot.h"
#include "train/optimizer.h"
#include "train/schedule.h"
#include "train/tensorboard_writer.h"
#include "train/train_step.h"

namespace fs = std::filesystem;

namespace duet::train {
namespace {

constexpr const char* kModelFile = "model.pt";
constexpr const char* kOptimizerFile = "optimizer.pt";
constexpr const char* kRngFile = "rng.pt";

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string format_duration(double seconds) {
  const auto s = static_cast<int64_t>(std::max(0.0, seconds));
  if (s >= 3600) {
    return fmt::format("{}h{:02d}m", s / 3600, (s % 3600) / 60);
  }
  return fmt::format("{}m{:02d}s", s / 60, s % 60);
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) {
    fail("cannot write '{}'", path);
  }
}

void save_rng(const std::string& path) {
  torch::serialize::OutputArchive archive;
  auto generator = at::detail::getDefaultCPUGenerator();
  {
    std::lock_guard<std::mutex> lock(generator.mutex());
    archive.write("cpu", generator.get_state());
  }
  archive.save_to(path);
}

// The CPU generator's state as hex text (ranks other than 0 send theirs to rank 0 this way).
std::string rng_state_hex() {
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  const torch::Tensor state = generator.get_state().contiguous();
  const auto* bytes = state.data_ptr<uint8_t>();
  std::string hex;
  hex.reserve(static_cast<size_t>(state.numel()) * 2);
  for (int64_t i = 0; i < state.numel(); ++i) {
    hex += fmt::format("{:02x}", bytes[i]);
  }
  return hex;
}

void set_rng_state_hex(const std::string& hex, const std::string& checkpoint) {
  DUET_CHECK(hex.size() % 2 == 0, "checkpoint '{}': malformed RNG state", checkpoint);
  torch::Tensor state = torch::empty({static_cast<int64_t>(hex.size() / 2)}, torch::kUInt8);
  auto* bytes = state.data_ptr<uint8_t>();
  for (size_t i = 0; i < hex.size(); i += 2) {
    bytes[i / 2] = static_cast<uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16));
  }
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(state);
}

void load_rng(const std::string& path) {
  torch::serialize::InputArchive archive;
  archive.load_from(path);
  torch::Tensor state;
  archive.read("cpu", state);
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(state);
}

// Loads model weights from a checkpoint directory, turning LibTorch's errors (shape mismatch,
// unreadable archive) into one that names the checkpoint.
void load_model_weights(models::ClipModel& model, const std::string& checkpoint) {
  try {
    torch::load(model, (fs::path(checkpoint) / kModelFile).string());
  } catch (const c10::Error& e) {
    fail("checkpoint '{}' does not fit this model (was it trained with another model config?): {}",
         checkpoint, e.what_without_backtrace());
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
          "checkpoint.resume is 'latest' but '{}' has no good checkpoint yet: "
          "starting fresh",
          store.dir());
    }
    return found;
  }
  return CheckpointStore::validate(checkpoint.resume);
}

int64_t total_steps(const config::Config& config, int64_t micro_batch, int world_size) {
  if (config.train.steps > 0) {
    return config.train.steps;
  }
  data::CsvOptions csv{config.data.csv_separator, config.data.csv_img_key,
                       config.data.csv_caption_key};
  const auto counts = data::count_samples(data::resolve_sources(config.data.train, csv));
  int64_t samples = 0;
  for (int64_t c : counts) {
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

// Metrics of a run: metrics.jsonl and TensorBoard event files, as logging.* enables them.
class MetricsSinks {
 public:
  MetricsSinks(const config::LoggingConfig& logging, const std::string& run_dir,
               std::optional<int64_t> resumed_step) {
    if (logging.jsonl) {
      jsonl_.emplace((fs::path(run_dir) / "metrics.jsonl").string(), resumed_step);
    }
    if (logging.tensorboard) {
      tensorboard_.emplace((fs::path(run_dir) / "tensorboard").string());
      if (resumed_step) {
        tensorboard_->write_resume(*resumed_step);
      }
    }
  }
  void write(int64_t step, const Scalars& scalars) {
    if (jsonl_) {
      jsonl_->write(step, scalars);
    }
    if (tensorboard_) {
      tensorboard_->write(step, scalars);
    }
  }

 private:
  std::optional<MetricsJsonl> jsonl_;
  std::optional<TensorBoardWriter> tensorboard_;
};

void add_eval_scalars(const eval::EvalResult& result, Scalars& scalars) {
  const nlohmann::json values = result.to_json();
  for (const auto& [name, value] : values.items()) {
    if (value.is_number_float()) {
      scalars.push_back({name, value.get<double>()});
    }
  }
}

void log_data_stats(const data::LoaderStats& stats) {
  std::string reasons;
  for (const auto& [reason, count] : stats.skipped_by_reason) {
    reasons += fmt::format("{}{}: {}", reasons.empty() ? " (" : ", ", reason, count);
  }
  if (!reasons.empty()) {
    reasons += ")";
  }
  log::get("train")->info("data: {} samples in {} batches, {} skipped{}", stats.samples,
                          stats.batches, stats.skipped, reasons);
}

}  // namespace

torch::Device resolve_device(config::DeviceChoice device) {
  if (device == config::DeviceChoice::kCpu) {
    return torch::kCPU;
  }
  const bool cuda = torch::cuda::is_available();
  if (device == config::DeviceChoice::kCuda && !cuda) {
    fail(ErrorKind::kConfig, "train.device is 'cuda' but LibTorch sees no CUDA device");
  }
  return cuda ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
}

TrainResult train(const config::Config& config, const TrainOptions& options) {
  auto logger = log::get("train");
  const auto& train_cfg = config.train;

  // ---- set-up: run directory, tokenizer, model, optimiser, data, checkpoints ----
  set_num_threads(static_cast<int>(train_cfg.threads));
  const torch::Device resolved_device = resolve_device(train_cfg.device);
  const bool bf16 = train_cfg.precision == config::Precision::kBf16;
  if (bf16 && !autocast_supported()) {
    fail(ErrorKind::kConfig, "train.precision 'bf16' needs LibTorch >= 2.4 (this build has {})",
         DUET_TORCH_VERSION);
  }
  // Ranks: one process unless a launcher's variables say otherwise (distributed/launch.h).
  const distributed::LaunchInfo launch =
      distributed::discover_launch(distributed::current_environment());
  log::set_rank(launch.rank);
  const torch::Device device =
      launch.is_distributed() && resolved_device.is_cuda()
          ? torch::Device(torch::kCUDA,
                          static_cast<c10::DeviceIndex>(distributed::cuda_device_index(
                              launch, static_cast<int>(torch::cuda::device_count()))))
          : resolved_device;
  const std::unique_ptr<distributed::Communicator> comm =
      distributed::make_communicator(launch, config.distributed, device);
  const int rank = comm->rank();
  const int world = comm->world_size();
  const bool writer = rank == 0;  // rank 0 alone writes the run directory
  distributed::check_same_config(*comm, config);
  if (train_cfg.batch_size % (int64_t{world} * train_cfg.accum_steps) != 0) {
    fail(ErrorKind::kConfig,
         "train.batch_size {} must be divisible by the number of ranks ({}) x train.accum_steps "
         "({}): each rank encodes batch_size / ranks / accum_steps samples at a time",
         train_cfg.batch_size, world, train_cfg.accum_steps);
  }

  const std::string run_name =
      train_cfg.run_name.empty() ? options.default_run_name : train_cfg.run_name;
  const std::string run_dir = (fs::path(train_cfg.output_dir) / run_name).string();
  // Rank 0 decides where to resume from (or that it cannot start) and tells the others, so
  // every rank resumes from the same checkpoint or stops with the same error.
  std::optional<CheckpointStore> store;
  std::optional<CheckpointInfo> resume;
  std::string decision;
  if (writer) {
    try {
      fs::create_directories(run_dir);
      store.emplace((fs::path(run_dir) / "checkpoints").string(), config.checkpoint.keep_last);
      resume = find_resume_point(config.checkpoint, *store);
      write_text((fs::path(run_dir) / "config.yaml").string(), config::to_yaml(config));
      decision = resume ? "resume:" + resume->path : "fresh:";
    } catch (const Error& e) {
      if (world == 1) {
        throw;
      }
      decision = fmt::format("error:{}:{}", static_cast<int>(e.kind()), e.what());
    }
  }
  if (world > 1) {
    decision = comm->all_gather_text(decision).front();
    if (decision.rfind("error:", 0) == 0) {
      const size_t colon = decision.find(':', 6);
      fail(static_cast<ErrorKind>(std::stoi(decision.substr(6, colon - 6))), "{}",
           decision.substr(colon + 1));
    }
    if (!writer && decision.rfind("resume:", 0) == 0) {
      resume = CheckpointStore::validate(decision.substr(7));
    }
  }

  const std::shared_ptr<const text::Tokenizer> tokenizer = text::make_tokenizer(config.tokenizer);
  torch::manual_seed(static_cast<uint64_t>(train_cfg.seed));
  models::ClipModel model(config.model, tokenizer->info());
  // model.init_from (skipped when resuming: the checkpoint replaces the weights), lock_image.
  export_::prepare_model(*model, config.model, /*load=*/!resume);
  model->to(device);
  if (world > 1) {
    // Every rank starts from rank 0's weights, then draws its own random numbers (dropout).
    std::vector<torch::Tensor> state = model->parameters();
    for (const auto& buffer : model->buffers()) {
      state.push_back(buffer);
    }
    distributed::broadcast_parameters(*comm, state, config.distributed.bucket_mb);
    torch::manual_seed(static_cast<uint64_t>(train_cfg.seed) + static_cast<uint64_t>(rank));
  }
  const auto optimizer = make_adamw(*model, config.optim);

  const int64_t micro_batch = train_cfg.batch_size / world / train_cfg.accum_steps;
  data::LoaderOptions loader_options;
  loader_options.sources = config.data.train;
  loader_options.mode = data::LoaderMode::kTrain;
  loader_options.batch_size = micro_batch;
  loader_options.image_size = config.model.vision.image_size;
  loader_options.context_length = config.model.text.context_length;
  loader_options.tokenizer = tokenizer;
  loader_options.seed = static_cast<uint64_t>(train_cfg.seed);
  loader_options.rank = rank;
  loader_options.world_size = world;
  data::Loader loader(config.data, loader_options);

  const int64_t steps = total_steps(config, micro_batch, world);
  const LrSchedule schedule(config.schedule, config.optim.lr, steps);

  int64_t step = 0;
  if (resume) {
    const int saved_world = resume->meta.value("world_size", 1);
    if (saved_world != world) {
      fail(ErrorKind::kConfig,
           "checkpoint '{}' was written by {} rank(s); resume it with the same number of ranks "
           "(this job has {})",
           resume->path, saved_world, world);
    }
    load_model_weights(model, resume->path);
    torch::load(*optimizer, (fs::path(resume->path) / kOptimizerFile).string());
    if (world == 1) {
      load_rng((fs::path(resume->path) / kRngFile).string());
      loader.restore(resume->meta.at("loader").dump());
    } else {
      const auto at = static_cast<size_t>(rank);
      set_rng_state_hex(resume->meta.at("rng_states").at(at).get<std::string>(), resume->path);
      loader.restore(resume->meta.at("loader_states").at(at).dump());
    }
    step = resume->step;
    logger->info("resumed from '{}' at step {}", resume->path, step);
    if (step > steps) {
      fail(ErrorKind::kConfig,
           "checkpoint '{}' is at step {}, past the {} steps this config trains (train.steps / "
           "train.epochs)",
           resume->path, step, steps);
    }
  }
  if (resume && step == steps) {  // nothing left: do not save or evaluate again
    logger->info(
        "run '{}' is already complete ({} steps); `duet eval --checkpoint {}` evaluates it",
        run_dir, steps, resume->path);
    comm->finish();
    TrainResult done;
    done.run_dir = run_dir;
    done.last_checkpoint = resume->path;
    done.steps = step;
    done.already_complete = true;
    done.rank = rank;
    return done;
  }
  std::optional<MetricsSinks> metrics;
  if (writer) {
    metrics.emplace(config.logging, run_dir,
                    resume ? std::optional<int64_t>(step) : std::optional<int64_t>());
  }
  const auto counts = models::count_parameters(*model);
  logger->info(
      "run '{}': {} steps of {} samples ({} rank(s) x {} x {} accumulation) on {}, {} parameters",
      run_dir, steps, train_cfg.batch_size, world, micro_batch, train_cfg.accum_steps, device.str(),
      counts.total);
  if (world > 1) {
    logger->info("{} backend, {}", comm->backend(), launch.describe());
  }

  // All ranks take part (their loader positions and RNG states go into the checkpoint); rank 0
  // writes it. Returns the checkpoint's path (empty on other ranks).
  auto save_checkpoint = [&](int64_t at_step) -> std::string {
    nlohmann::json meta = {
        {"step", at_step}, {"config", config::to_yaml(config)}, {"duet_version", DUET_VERSION}};
    if (world == 1) {
      meta["loader"] = nlohmann::json::parse(loader.state());
    } else {
      meta["world_size"] = world;
      meta["loader_states"] = nlohmann::json::array();
      for (const auto& state : comm->all_gather_text(loader.state())) {
        meta["loader_states"].push_back(nlohmann::json::parse(state));
      }
      meta["rng_states"] = comm->all_gather_text(rng_state_hex());
    }
    std::string path;
    if (writer) {
      path = store->save(at_step, meta, [&](const std::string& dir) {
        torch::save(model, (fs::path(dir) / kModelFile).string());
        torch::save(*optimizer, (fs::path(dir) / kOptimizerFile).string());
        save_rng((fs::path(dir) / kRngFile).string());
      });
    }
    if (writer) {
      logger->info("saved checkpoint '{}'", path);
    }
    comm->barrier();  // no rank runs ahead of a checkpoint it may have to resume from
    return path;
  };
  auto next_batch = [&]() {
    auto batch = loader.next();
    if (!batch) {  // end of an epoch: the next call starts the following one
      batch = loader.next();
    }
    DUET_CHECK(batch.has_value(), "data.train yields no batch");
    return std::move(*batch);
  };

  auto write_metrics = [&](int64_t at_step, const Scalars& scalars) {
    if (metrics) {
      metrics->write(at_step, scalars);
    }
  };

  // ---- the loop ----
  TrainResult result;
  result.run_dir = run_dir;
  result.rank = rank;
  const int64_t stop_at =
      options.stop_after > 0 ? std::min(steps, step + options.stop_after) : steps;
  int64_t consecutive_bad = 0;
  double window_loss = 0.0;
  int64_t window_steps = 0;
  int64_t window_samples = 0;
  auto window_start = Clock::now();
  const auto run_start = Clock::now();
  const int64_t first_step = step;
  int64_t saved_step = resume ? step : -1;
  std::vector<torch::Tensor> parameters = model->parameters();
  StepOptions step_options;  // the towers run under bf16 autocast when asked; the loss in fp32
  step_options.loss = config.loss;
  step_options.device = device;
  step_options.bf16 = bf16;
  std::optional<distributed::GradientSync> gradient_sync;
  if (world > 1) {  // each rank's rows against the gathered global batch; gradients averaged
    step_options.gather.all_gather = [&](const torch::Tensor& local) {
      return distributed::all_gather_with_grad(*comm, local);
    };
    step_options.gather.rank = rank;
    gradient_sync.emplace(*comm, parameters, config.distributed.bucket_mb);
  }

  while (step < stop_at) {
    const double lr = schedule.at(step);
    set_learning_rate(*optimizer, lr);
    optimizer->zero_grad();

    std::vector<data::Batch> micro;
    for (int64_t k = 0; k < train_cfg.accum_steps; ++k) {
      micro.push_back(next_batch());
    }
    double loss_value = accumulate_gradients(*model, micro, step_options);
    if (gradient_sync) {
      gradient_sync->average_gradients();
      torch::Tensor mean = torch::full({1}, loss_value / world, torch::kFloat64);
      comm->all_reduce_sum(mean);  // the global batch's loss, the same on every rank
      loss_value = mean.item<double>();
    }

    // Clip (or only measure) the gradient norm; skip non-finite steps.
    const double max_norm = config.optim.grad_clip_norm > 0.0
                                ? config.optim.grad_clip_norm
                                : std::numeric_limits<double>::infinity();
    const double grad_norm = torch::nn::utils::clip_grad_norm_(parameters, max_norm);
    if (!std::isfinite(loss_value) || !std::isfinite(grad_norm)) {
      ++result.skipped_steps;
      ++consecutive_bad;
      optimizer->zero_grad();
      logger->warn(
          "step {}: non-finite loss ({}) or gradient norm ({}): step skipped ({} in a row)",
          step + 1, loss_value, grad_norm, consecutive_bad);
      if (consecutive_bad >= train_cfg.nan_patience) {
        fail(
            "training diverged: {} consecutive steps with a non-finite loss or gradient (limit "
            "train.nan_patience = {}); lower optim.lr or enable optim.grad_clip_norm",
            consecutive_bad, train_cfg.nan_patience);
      }
      continue;
    }
    consecutive_bad = 0;
    optimizer->step();
    model->clamp_logit_scale(config.optim.logit_scale_max);
    ++step;
    result.last_loss = loss_value;

    // Progress line and metrics.
    window_loss += loss_value;
    ++window_steps;
    window_samples += train_cfg.batch_size;
    if (step % config.logging.every_steps == 0 || step == stop_at) {
      const double window_seconds = seconds_since(window_start);
      const double samples_per_second = window_samples / std::max(window_seconds, 1e-9);
      const double eta = (steps - step) * seconds_since(run_start) /
                         static_cast<double>(std::max<int64_t>(1, step - first_step));
      const double scale = model->logit_scale.exp().item<double>();
      logger->info("step {}/{} epoch {} loss {:.4f} lr {:.3g} scale {:.2f} {:.0f} samples/s ETA {}",
                   step, steps, loader.epoch(), window_loss / window_steps, lr, scale,
                   samples_per_second, format_duration(eta));
      write_metrics(step, {{"loss", window_loss / window_steps},
                           {"lr", lr},
                           {"logit_scale", scale},
                           {"grad_norm", grad_norm},
                           {"samples_per_second", samples_per_second},
                           {"epoch", static_cast<double>(loader.epoch())},
                           {"data_skipped", static_cast<double>(loader.stats().skipped)}});
      window_loss = 0.0;
      window_steps = 0;
      window_samples = 0;
      window_start = Clock::now();
    }
    // Evaluation and checkpoints pause the throughput window: samples/s measures training.
    const auto pause_start = Clock::now();
    const bool last = step == steps;
    if (config.eval.every_steps > 0 && step % config.eval.every_steps == 0 && !last) {
      const eval::EvalResult evaluation = eval::evaluate(*model, *tokenizer, config, device);
      Scalars scalars;
      add_eval_scalars(evaluation, scalars);
      if (!scalars.empty()) {
        logger->info("step {} eval {}", step, evaluation.to_json().dump());
        write_metrics(step, scalars);
      }
    }
    if (config.checkpoint.every_steps > 0 && step % config.checkpoint.every_steps == 0) {
      result.last_checkpoint = save_checkpoint(step);
      saved_step = step;
    }
    window_start += Clock::now() - pause_start;
  }

  // ---- the end: checkpoint, evaluation, plot ----
  result.steps = step;
  log_data_stats(loader.stats());
  if (saved_step != step) {
    result.last_checkpoint = save_checkpoint(step);
  }
  if (step == steps) {
    result.final_eval = eval::evaluate(*model, *tokenizer, config, device);
    Scalars scalars;
    add_eval_scalars(result.final_eval, scalars);
    if (!scalars.empty()) {
      logger->info("final eval {}", result.final_eval.to_json().dump());
      write_metrics(step, scalars);
    }
  }
  if (writer && config.logging.jsonl) {
    write_metrics_plot((fs::path(run_dir) / "metrics.jsonl").string(),
                       (fs::path(run_dir) / "loss.svg").string(), "duet train: " + run_name);
  }
  comm->finish();
  return result;
}

eval::EvalResult evaluate_checkpoint(const std::string& checkpoint,
                                     const std::optional<config::Config>& config) {
  const CheckpointInfo info = CheckpointStore::validate(checkpoint);
  const config::Config resolved =
      config ? *config
             : config::load_string(info.meta.at("config").get<std::string>(),
                                   (fs::path(checkpoint) / "config").string());
  if (!config) {  // the checkpoint's config stands in for -c: its logging.level applies too
    log::apply_config_level(resolved.logging.level);
  }
  const auto tokenizer = text::make_tokenizer(resolved.tokenizer);
  const torch::Device device = resolve_device(resolved.train.device);
  models::ClipModel model(resolved.model, tokenizer->info());
  load_model_weights(model, checkpoint);
  model->to(device);
  return eval::evaluate(*model, *tokenizer, resolved, device);
}

}  // namespace duet::train
