// The reporter (see reporter.h): device-side window sums, one host read per logging step.
#include "train/reporter.h"

#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include "common/error.h"
#include "common/logging.h"
#include "train/host_reads.h"
#include "train/metrics_jsonl.h"
#include "train/tensorboard_writer.h"

namespace fs = std::filesystem;

namespace duet::train {
namespace {

using Clock = std::chrono::steady_clock;

std::string format_duration(double seconds) {
  const auto s = static_cast<int64_t>(std::max(0.0, seconds));
  if (s >= 3600) {
    return fmt::format("{}h{:02d}m", s / 3600, (s % 3600) / 60);
  }
  return fmt::format("{}m{:02d}s", s / 60, s % 60);
}

// A step that waits for data this much of its time is starved: the line says so.
constexpr double kStarvedFraction = 0.5;

}  // namespace

Reporter::Reporter(const config::Config& config, const ReportSetup& setup)
    : config_(config),
      setup_(setup),
      run_start_(Clock::now()),
      window_start_(Clock::now()),
      last_loss_(std::numeric_limits<double>::quiet_NaN()) {
  if (!setup_.writer) {
    return;
  }
  const std::optional<int64_t> resumed =
      setup_.resumed ? std::optional<int64_t>(setup_.first_step) : std::nullopt;
  if (config_.logging.jsonl) {
    jsonl_ = std::make_unique<MetricsJsonl>((fs::path(setup_.run_dir) / "metrics.jsonl").string(),
                                            resumed);
  }
  if (config_.logging.tensorboard) {
    tensorboard_ =
        std::make_unique<TensorBoardWriter>((fs::path(setup_.run_dir) / "tensorboard").string());
    if (resumed) {
      tensorboard_->write_resume(*resumed);
    }
  }
}

Reporter::~Reporter() = default;

void Reporter::add_step(const torch::Tensor& loss, const GradientCheck& check,
                        double data_wait_seconds) {
  torch::NoGradGuard no_grad;
  if (!window_loss_.defined()) {
    const auto options = loss.options().dtype(torch::kFloat64);
    window_loss_ = torch::zeros({}, options);
    window_applied_ = torch::zeros({}, options);
    bad_run_ = torch::zeros({}, options);
    worst_run_ = torch::zeros({}, options);
  }
  const torch::Tensor applied = check.finite.to(torch::kFloat64);
  const torch::Tensor skipped = 1.0 - applied;
  const torch::Tensor value = loss.to(torch::kFloat64);
  window_loss_.add_(torch::where(check.finite, value, 0.0));
  window_applied_.add_(applied);
  bad_run_.add_(1.0).mul_(skipped);
  at::maximum_out(worst_run_, worst_run_, bad_run_);
  last_grad_norm_ = check.norm;
  ++window_steps_;
  window_wait_seconds_ += data_wait_seconds;
}

bool Reporter::is_logging_step(int64_t step, int64_t stop_at) const {
  return step % config_.logging.every_steps == 0 || step == stop_at;
}

void Reporter::exclude(double seconds) {
  window_start_ +=
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

void Reporter::fail_if_diverged(double worst_run, int64_t step) const {
  const int64_t patience = config_.train.nan_patience;
  if (worst_run >= static_cast<double>(patience)) {
    fail(
        "training diverged: {} consecutive steps with a non-finite loss or gradient, up to step "
        "{} (limit train.nan_patience = {}); lower optim.lr or enable optim.grad_clip_norm",
        static_cast<int64_t>(worst_run), step, patience);
  }
}

void Reporter::log_window(int64_t step, double lr, const torch::Tensor& logit_scale,
                          const torch::Tensor& logit_bias, int64_t epoch, int64_t data_skipped) {
  if (window_steps_ == 0) {
    return;
  }
  std::vector<torch::Tensor> reads = {window_loss_, window_applied_, worst_run_, last_grad_norm_,
                                      logit_scale.detach().exp()};
  if (logit_bias.defined()) {
    reads.push_back(logit_bias.detach());
  }
  const std::vector<double> v = read_to_host(reads, "logging");  // the window's one sync
  const double loss = v[1] > 0 ? v[0] / v[1] : std::numeric_limits<double>::quiet_NaN();
  // The window's non-finite steps: those not applied.
  const int64_t skipped = window_steps_ - std::llround(v[1]);
  const double grad_norm = v[3];
  const double temperature = v[4];
  skipped_total_ += skipped;
  last_loss_ = loss;
  const int64_t first_in_window = step - window_steps_ + 1;
  if (skipped > 0) {
    log::get("train")->warn(
        "steps {}-{}: {} non-finite step(s) skipped (loss or gradient norm not finite)",
        first_in_window, step, skipped);
  }
  fail_if_diverged(v[2], step);

  const double seconds = std::chrono::duration<double>(Clock::now() - window_start_).count();
  const double step_ms = 1000.0 * seconds / static_cast<double>(window_steps_);
  const double wait_ms =
      std::min(step_ms, 1000.0 * window_wait_seconds_ / static_cast<double>(window_steps_));
  const double samples_per_second =
      static_cast<double>(window_steps_ * setup_.samples_per_step) / std::max(seconds, 1e-9);
  const double elapsed = std::chrono::duration<double>(Clock::now() - run_start_).count();
  const double eta = static_cast<double>(setup_.total_steps - step) * elapsed /
                     static_cast<double>(std::max<int64_t>(1, step - setup_.first_step));
  std::string bias_text;
  if (logit_bias.defined()) {
    bias_text = fmt::format(" bias {:.2f}", v[5]);
  }
  const bool starved = wait_ms > kStarvedFraction * step_ms;
  log::get("train")->info(
      "step {}/{} epoch {} loss {:.4f} lr {:.3g} t {:.2f}{} {:.0f} samples/s step {:.0f} ms "
      "(data wait {:.0f} ms){} ETA {}",
      step, setup_.total_steps, epoch, loss, lr, temperature, bias_text, samples_per_second,
      step_ms, wait_ms,
      starved ? " - waiting for data: more data.workers or faster storage would help" : "",
      format_duration(eta));

  Scalars scalars = {{"loss", loss},
                     {"lr", lr},
                     {"logit_scale", temperature},
                     {"grad_norm", grad_norm},
                     {"samples_per_second", samples_per_second},
                     {"epoch", static_cast<double>(epoch)},
                     {"data_skipped", static_cast<double>(data_skipped)},
                     {"skipped_steps", static_cast<double>(skipped)},
                     {"step_time_ms", step_ms},
                     {"data_wait_ms", wait_ms},
                     {"compute_ms", step_ms - wait_ms}};
  if (logit_bias.defined()) {
    scalars.push_back({"logit_bias", v[5]});
  }
  write(step, scalars);

  torch::NoGradGuard no_grad;
  window_loss_.zero_();
  window_applied_.zero_();
  worst_run_.copy_(bad_run_);  // a run of bad steps may go on into the next window
  window_steps_ = 0;
  window_wait_seconds_ = 0.0;
  window_start_ = Clock::now();
}

void Reporter::check_divergence(int64_t step) {
  if (!worst_run_.defined()) {
    return;
  }
  fail_if_diverged(read_to_host({worst_run_}, "divergence check").front(), step);
}

void Reporter::write_eval(int64_t step, const eval::EvalResult& result, const std::string& label) {
  Scalars scalars;
  const nlohmann::json values = result.to_json();
  for (const auto& [name, value] : values.items()) {
    if (value.is_number_float()) {
      scalars.push_back({name, value.get<double>()});
    }
  }
  if (scalars.empty()) {
    return;
  }
  log::get("train")->info("{} eval {}", label, values.dump());
  write(step, scalars);
}

void Reporter::write(int64_t step, const Scalars& scalars) {
  if (jsonl_) {
    jsonl_->write(step, scalars);
  }
  if (tensorboard_) {
    tensorboard_->write(step, scalars);
  }
}

}  // namespace duet::train
