#pragma once
// Learning-rate schedules: linear warmup from 0, then cosine decay to min_lr or constant.
// A pure function of the step, so resuming needs no schedule state beyond the step itself.
#include <cstdint>

#include "config/config.h"

namespace duet::train {

class LrSchedule {
 public:
  LrSchedule(const config::ScheduleConfig& schedule, double base_lr, int64_t total_steps);

  // Learning rate for optimiser step `step` (0-based).
  double at(int64_t step) const;

 private:
  config::ScheduleConfig schedule_;
  double base_lr_;
  int64_t total_steps_;
};

}  // namespace duet::train
