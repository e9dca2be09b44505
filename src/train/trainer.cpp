// `duet train` (see trainer.h for the shape of a run and its invariants). train() plans, builds
// a Trainer and runs it; Trainer::run_steps is the step loop.
#include "train/trainer.h"

#include <chrono>
#include <filesystem>
#include <limits>
#include <optional>

#include <torch/torch.h>

#include "common/error.h"
#include "common/logging.h"
#include "config/loader.h"
#include "data/loader.h"
#include "distributed/gather.h"
#include "eval/eval_details.h"
#include "eval/eval_shard.h"
#include "distributed/gradient_sync.h"
#include "export/model_io.h"
#include "models/clip_model.h"
#include "text/tokenizer.h"
#include "train/checkpoint.h"
#include "train/device_feeder.h"
#include "train/host_reads.h"
#include "train/metrics_plot.h"
#include "train/optimizer.h"
#include "train/reporter.h"
#include "train/run_plan.h"
#include "train/run_report.h"
#include "train/schedule.h"
#include "train/sync_check.h"
#include "train/train_step.h"

namespace fs = std::filesystem;

namespace duet::train {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
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

// The parameters that train (a tower frozen by model.lock_image has none).
std::vector<torch::Tensor> trainable_parameters(const torch::nn::Module& model) {
  std::vector<torch::Tensor> out;
  for (const torch::Tensor& p : model.parameters()) {
    if (p.requires_grad()) {
      out.push_back(p);
    }
  }
  return out;
}

// One training run once planned: what the step loop works on, and the loop.
class Trainer {
 public:
  Trainer(const config::Config& config, RunPlan& plan, const TrainOptions& options)
      : config_(config), plan_(plan), options_(options), device_(plan.device) {
    const auto& train = config_.train;
    tokenizer_ = text::make_tokenizer(config_.tokenizer);
    torch::manual_seed(static_cast<uint64_t>(train.seed));
    model_ = models::ClipModel(config_.model, tokenizer_->info());
    // model.init_from (skipped when resuming: the checkpoint replaces the weights), lock_image.
    export_::prepare_model(*model_, config_.model, /*load=*/!plan_.resume);
    model_->to(device_);
    if (plan_.world_size > 1) {
      // Every rank starts from rank 0's weights, then draws its own random numbers (dropout).
      std::vector<torch::Tensor> state = model_->parameters();
      for (const auto& buffer : model_->buffers()) {
        state.push_back(buffer);
      }
      distributed::broadcast_parameters(*plan_.comm, state, config_.distributed.bucket_mb);
      torch::manual_seed(static_cast<uint64_t>(train.seed) + static_cast<uint64_t>(plan_.rank));
    }
    trainable_ = trainable_parameters(*model_);
    optimizer_ = make_adamw(*model_, config_.optim);
    schedule_.emplace(config_.schedule, config_.optim.lr, plan_.total_steps);

    data::LoaderOptions loader_options;
    loader_options.sources = config_.data.train;
    loader_options.mode = data::LoaderMode::kTrain;
    loader_options.batch_size = plan_.micro_batch;
    loader_options.image_size = config_.model.vision.image_size;
    loader_options.context_length = config_.model.text.context_length;
    loader_options.tokenizer = tokenizer_;
    loader_options.seed = static_cast<uint64_t>(train.seed);
    loader_options.rank = plan_.rank;
    loader_options.world_size = plan_.world_size;
    loader_options.ranks_on_node = plan_.launch.local_world_size;
    loader_options.pin_memory = device_.is_cuda();
    loader_.emplace(config_.data, loader_options);

    if (plan_.resume) {
      const RankState state = load_for_resume(*plan_.resume, plan_.rank, plan_.world_size, *model_,
                                              *optimizer_, device_);
      restore_generators(state, device_, plan_.resume->path);
      loader_->restore(state.loader.dump());
      step_ = plan_.resume->step;
      log::get("train")->info("resumed from '{}' at step {}", plan_.resume->path, step_);
    }
    // Token values are checked on the host, before the copy (the text tower does not read GPU
    // tokens back).
    feeder_.emplace(*loader_, device_, train.accum_steps, [this](const data::Batch& batch) {
      model_->text_tower->check_tokens(batch.tokens);
    });

    step_options_.loss = config_.loss;
    step_options_.device = device_;
    step_options_.bf16 = train.precision == config::Precision::kBf16;
    if (plan_.collective) {  // each rank's rows against the gathered global batch
      step_options_.gather.all_gather = [this](const torch::Tensor& local) {
        return distributed::all_gather_with_grad(*plan_.comm, local);
      };
      step_options_.gather.rank = plan_.rank;
      gradient_sync_.emplace(*plan_.comm, trainable_, config_.distributed.bucket_mb);
    }
    max_grad_norm_ = config_.optim.grad_clip_norm > 0.0 ? config_.optim.grad_clip_norm
                                                        : std::numeric_limits<double>::infinity();
    saved_step_ = plan_.resume ? step_ : -1;
  }

  int64_t step() const { return step_; }

  void describe() const {
    const auto counts = models::count_parameters(*model_);
    log::get("train")->info(
        "run '{}': {} steps of {} samples ({} rank(s) x {} x {} accumulation) on {}, {} "
        "parameters, {} data workers per rank",
        plan_.run_dir, plan_.total_steps, config_.train.batch_size, plan_.world_size,
        plan_.micro_batch, config_.train.accum_steps, device_.str(), counts.total,
        data::resolve_workers(config_.data.workers, plan_.launch.local_world_size));
    if (plan_.collective) {
      log::get("train")->info("{} backend, {}", plan_.comm->backend(), plan_.launch.describe());
    }
  }

  // The step loop: one optimiser step per iteration, top to bottom. Between sync points
  // (logging, evaluation, checkpoint steps) nothing reads a device value on the host.
  void run_steps(int64_t stop_at) {
    ReportSetup setup;
    setup.run_dir = plan_.run_dir;
    setup.writer = plan_.writer;
    setup.total_steps = plan_.total_steps;
    setup.first_step = step_;
    setup.samples_per_step = config_.train.batch_size;
    setup.resumed = plan_.resume.has_value();
    reporter_.emplace(config_, setup);

    while (step_ < stop_at) {
      set_host_read_step(step_ + 1);
      const double lr = schedule_->at(step_);
      {
        const HostSyncCheck no_waiting(options_.check_host_syncs);
        optimizer_->set_lr(lr);
        optimizer_->zero_grad();
        const std::vector<data::Batch> micro = feeder_->take();

        torch::Tensor loss = accumulate_gradients(*model_, micro, step_options_);
        if (gradient_sync_) {
          gradient_sync_->average_gradients();
          loss = mean_over_ranks(loss);
        }
        const GradientCheck check = clip_gradients(trainable_, max_grad_norm_, loss);
        optimizer_->step(/*skip=*/check.finite.logical_not());  // non-finite: nothing changes
        model_->clamp_logit_scale(config_.optim.logit_scale_max);
        ++step_;
        if (step_ < stop_at) {
          feeder_->prepare_next();  // its copy overlaps this step on the GPU
        }
        reporter_->add_step(loss, check, feeder_->take_wait_seconds());
      }

      if (reporter_->is_logging_step(step_, stop_at)) {
        reporter_->log_window(step_, lr, model_->logit_scale, model_->logit_bias, feeder_->epoch(),
                              loader_->stats().skipped);
      }
      // Evaluation and checkpoints are left out of the reporter's step time.
      const auto pause = Clock::now();
      if (config_.eval.every_steps > 0 && step_ % config_.eval.every_steps == 0 &&
          step_ != plan_.total_steps) {
        evaluate("step " + std::to_string(step_));
      }
      if (config_.checkpoint.every_steps > 0 && step_ % config_.checkpoint.every_steps == 0) {
        save();
      }
      reporter_->exclude(seconds_since(pause));
    }
    set_host_read_step(-1);
  }

  // The end of an invocation: a checkpoint unless just saved; at the last step, the final
  // evaluation and the loss plot.
  TrainResult finish() {
    TrainResult result;
    result.run_dir = plan_.run_dir;
    result.rank = plan_.rank;
    result.steps = step_;
    log_data_stats(loader_->stats());
    if (saved_step_ != step_) {
      save();
    }
    result.last_checkpoint = last_checkpoint_;
    if (reporter_) {
      result.skipped_steps = reporter_->skipped_steps();
      result.last_loss = reporter_->last_loss();
    }
    if (step_ == plan_.total_steps) {
      result.final_eval = evaluate("final");
    }
    if (plan_.writer && config_.logging.jsonl) {
      write_metrics_plot((fs::path(plan_.run_dir) / "metrics.jsonl").string(),
                         (fs::path(plan_.run_dir) / "loss.svg").string(),
                         "duet train: " + plan_.run_name);
    }
    if (plan_.writer) {
      result.report = write_run_report(plan_.run_dir);
    }
    return result;
  }

 private:
  // The global batch's loss, the same on every rank: a collective on the training device (the
  // NCCL communicator takes only tensors on its GPU).
  torch::Tensor mean_over_ranks(const torch::Tensor& loss) {
    torch::Tensor sum = loss.reshape({1}).clone();
    plan_.comm->all_reduce_sum(sum);
    return sum.reshape({}) / static_cast<double>(plan_.world_size);
  }

  // The one place the trainer evaluates (during training and at the end): each rank embeds its
  // share of the evaluation data and every rank gets the whole result; rank 0 records it and
  // keeps the details the run report shows.
  eval::EvalResult evaluate(const std::string& label) {
    eval::EvalShard shard;
    if (plan_.collective) {
      shard.rank = plan_.rank;
      shard.world_size = plan_.world_size;
      // The evaluation's CPU tensors through the communicator, on its device (NCCL: the GPU).
      shard.all_gather = [this](const torch::Tensor& local) {
        return plan_.comm->all_gather(local.to(device_).contiguous()).to(local.device());
      };
    }
    eval::EvalResult result = eval::evaluate(*model_, *tokenizer_, config_, device_, shard);
    if (reporter_) {
      reporter_->write_eval(step_, result, label);
    }
    if (plan_.writer && !result.empty()) {
      eval::save_eval_details(plan_.run_dir, step_, result);
    }
    return result;
  }

  // Every rank takes part (its loader position and generators go into the checkpoint); rank 0
  // writes it; no rank runs ahead of a checkpoint it may have to resume from.
  void save() {
    if (reporter_) {
      reporter_->check_divergence(step_);  // never save a diverged model
    }
    const RankState mine = capture_rank_state(feeder_->loader_state(), device_);
    std::vector<RankState> ranks;
    if (plan_.collective) {
      int r = 0;
      for (const auto& text : plan_.comm->all_gather_text(mine.to_json().dump())) {
        ranks.push_back(
            RankState::from_json(nlohmann::json::parse(text), fmt::format("rank {}'s state", r++)));
      }
    } else {
      ranks.push_back(mine);
    }
    if (plan_.writer) {
      last_checkpoint_ = save_checkpoint(*plan_.store, step_, config::to_yaml(config_), *model_,
                                         *optimizer_, ranks);
      log::get("train")->info("saved checkpoint '{}'", last_checkpoint_);
    }
    plan_.comm->barrier();
    saved_step_ = step_;
  }

  const config::Config& config_;
  RunPlan& plan_;
  const TrainOptions& options_;
  const torch::Device device_;
  std::shared_ptr<const text::Tokenizer> tokenizer_;
  models::ClipModel model_{nullptr};
  std::vector<torch::Tensor> trainable_;
  std::unique_ptr<AdamW> optimizer_;
  std::optional<LrSchedule> schedule_;
  std::optional<data::Loader> loader_;
  std::optional<DeviceFeeder> feeder_;
  std::optional<distributed::GradientSync> gradient_sync_;
  std::optional<Reporter> reporter_;
  StepOptions step_options_;
  double max_grad_norm_ = 0.0;
  int64_t step_ = 0;
  int64_t saved_step_ = -1;
  std::string last_checkpoint_;
};

}  // namespace

TrainResult train(const config::Config& config, const TrainOptions& options) {
  if (options.check_host_syncs) {
    HostSyncCheck available(true);  // a build without the check fails here, before the run exists
  }
  RunPlan plan = plan_run(config, options);
  if (plan.resume && plan.resume->step == plan.total_steps) {  // nothing left to do
    log::get("train")->info(
        "run '{}' is already complete ({} steps); `duet eval --checkpoint {}` evaluates it",
        plan.run_dir, plan.total_steps, plan.resume->path);
    plan.comm->finish();
    TrainResult done;
    done.run_dir = plan.run_dir;
    done.last_checkpoint = plan.resume->path;
    done.steps = plan.resume->step;
    done.already_complete = true;
    done.rank = plan.rank;
    return done;
  }
  Trainer trainer(config, plan, options);
  trainer.describe();
  const int64_t stop_at = options.stop_after > 0
                              ? std::min(plan.total_steps, trainer.step() + options.stop_after)
                              : plan.total_steps;
  trainer.run_steps(stop_at);
  TrainResult result = trainer.finish();
  plan.comm->finish();
  return result;
}

torch::Device inference_device(config::DeviceChoice device) {
  if (device == config::DeviceChoice::kCpu) {
    return torch::kCPU;
  }
  const int visible = static_cast<int>(torch::cuda::device_count());
  if (device == config::DeviceChoice::kCuda && visible == 0) {
    log::get("eval")->warn("train.device is 'cuda' but no GPU is visible: running on the CPU");
    return torch::kCPU;
  }
  return training_device(device, distributed::LaunchInfo{}, visible);
}

eval::EvalResult evaluate_checkpoint(const std::string& checkpoint,
                                     const std::optional<config::Config>& config) {
  // Without a config the checkpoint must be duet's (it stores one); with one, any source
  // export_::load_weights reads (a duet checkpoint, a transformers or OpenCLIP export, ...).
  std::optional<CheckpointInfo> info;
  if (!config) {
    info = CheckpointStore::validate(checkpoint);
  }
  const config::Config resolved = config ? *config : load_checkpoint_config(*info);
  if (!config) {  // the checkpoint's config stands in for -c: its logging.level applies too
    log::apply_config_level(resolved.logging.level);
  }
  const auto tokenizer = text::make_tokenizer(resolved.tokenizer);
  const torch::Device device = inference_device(resolved.train.device);
  models::ClipModel model(resolved.model, tokenizer->info());
  // On the CPU, wherever the checkpoint was written; validated once.
  if (info) {
    load_model_weights(*model, *info);
  } else {
    export_::load_weights(*model, checkpoint);
  }
  model->to(device);
  return eval::evaluate(*model, *tokenizer, resolved, device);
}

}  // namespace duet::train
