#pragma once
// The backends behind make_communicator (communicator.h); one .cpp each.
#include <chrono>
#include <memory>

#include <torch/types.h>

#include "distributed/communicator.h"
#include "distributed/launch.h"

namespace duet::distributed {

std::unique_ptr<Communicator> make_single_communicator();

std::unique_ptr<Communicator> make_gloo_communicator(const LaunchInfo& launch,
                                                     std::chrono::milliseconds timeout);

// Only in builds with DUET_NCCL; `device` is the rank's CUDA device.
std::unique_ptr<Communicator> make_nccl_communicator(const LaunchInfo& launch,
                                                     std::chrono::milliseconds timeout,
                                                     const torch::Device& device);

}  // namespace duet::distributed
