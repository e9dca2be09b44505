// Planning a run (train/run_plan.h): the training device is indexed wherever it is a GPU - one
// process with train.device cuda (or auto) gets cuda:0, not an unindexed "cuda", which the NCCL
// communicator refused with distributed.backend: nccl - and a launched rank gets its GPU.
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include "common/error.h"
#include "distributed/launch.h"
#include "train/run_plan.h"

using duet::config::DeviceChoice;
using duet::train::training_device;

TEST_CASE("one process on a GPU trains on cuda:0, an indexed device", "[plan]") {
  const duet::distributed::LaunchInfo alone;
  for (const DeviceChoice choice : {DeviceChoice::kCuda, DeviceChoice::kAuto}) {
    const torch::Device device = training_device(choice, alone, 2);
    CHECK(device.is_cuda());
    CHECK(device.has_index());
    CHECK(device.index() == 0);
  }
  CHECK(training_device(DeviceChoice::kCpu, alone, 2).is_cpu());
  CHECK(training_device(DeviceChoice::kAuto, alone, 0).is_cpu());
  try {
    training_device(DeviceChoice::kCuda, alone, 0);
    FAIL("cuda without a device was accepted");
  } catch (const duet::Error& e) {
    CHECK(e.kind() == duet::ErrorKind::kConfig);
    CHECK_THAT(e.what(), Catch::Contains("train.device is 'cuda'"));
  }
}

TEST_CASE("a launched rank trains on its own GPU", "[plan]") {
  duet::distributed::LaunchInfo rank;
  rank.rank = 3;
  rank.world_size = 4;
  rank.local_rank = 1;
  CHECK(training_device(DeviceChoice::kCuda, rank, 4) == torch::Device(torch::kCUDA, 1));
  // One GPU per rank (srun --gpus-per-task=1, CUDA_VISIBLE_DEVICES per rank): index 0.
  CHECK(training_device(DeviceChoice::kCuda, rank, 1) == torch::Device(torch::kCUDA, 0));
}
