#include "train/schedule.h"

#include <algorithm>
#include <cmath>

namespace duet::train {

LrSchedule::LrSchedule(const config::ScheduleConfig& schedule, double base_lr, int64_t total_steps)
    : schedule_(schedule), base_lr_(base_lr), total_steps_(total_steps) {}

double LrSchedule::at(int64_t step) const {
  const int64_t warmup = schedule_.warmup_steps;
  if (step < warmup) {
    return base_lr_ * static_cast<double>(step + 1) / static_cast<double>(warmup);  // as OpenCLIP
  }
  if (schedule_.type == config::ScheduleType::kConstant) {
    return base_lr_;
  }
  const double decay_steps = static_cast<double>(std::max<int64_t>(1, total_steps_ - warmup));
  const double progress = std::min(1.0, static_cast<double>(step - warmup) / decay_steps);
  const double kPi = std::acos(-1.0);
  return schedule_.min_lr + 0.5 * (1.0 + std::cos(kPi * progress)) * (base_lr_ - schedule_.min_lr);
}

}  // namespace duet::train
