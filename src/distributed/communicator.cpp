#include "distributed/communicator.h"

#include <chrono>

#include "common/error.h"
#include "common/logging.h"
#include "distributed/communicator_backends.h"
#include "duet/build_info.h"

namespace duet::distributed {

std::vector<torch::Tensor> Communicator::all_gather_list(const torch::Tensor& local) {
  const torch::Tensor all = all_gather(local);
  std::vector<torch::Tensor> parts;
  for (int r = 0; r < world_size(); ++r) {
    parts.push_back(all.narrow(0, r * local.size(0), local.size(0)));
  }
  return parts;
}

bool nccl_available() { return DUET_NCCL != 0; }

std::unique_ptr<Communicator> make_communicator(const LaunchInfo& launch,
                                                const config::DistributedConfig& config,
                                                const torch::Device& device) {
  const config::Backend backend = config.backend;
  if (backend == config::Backend::kNone) {
    if (launch.world_size > 1) {
      fail(ErrorKind::kConfig,
           "distributed.backend 'none' runs one process, but the launcher ({}) started {} "
           "ranks; use auto, gloo or nccl",
           launch.launcher, launch.world_size);
    }
    return make_single_communicator();
  }
  if (backend == config::Backend::kAuto && launch.world_size == 1) {
    return make_single_communicator();
  }
  const auto timeout = std::chrono::milliseconds(config.timeout_seconds * 1000);
  config::Backend chosen = backend;
  if (backend == config::Backend::kAuto) {
    chosen = device.is_cuda() && nccl_available() ? config::Backend::kNccl : config::Backend::kGloo;
  }
  auto logger = log::get("distributed");
  if (chosen == config::Backend::kGloo) {
    if (device.is_cuda()) {
      logger->warn(
          "distributed: gloo with CUDA tensors stages every collective through host memory{}",
          nccl_available() ? "; distributed.backend nccl is faster" : " (this build has no NCCL)");
    }
    logger->info("distributed: {}, gloo backend", launch.describe());
    return make_gloo_communicator(launch, timeout);
  }
  if (!nccl_available()) {
    fail(ErrorKind::kConfig,
         "distributed.backend 'nccl': this build has no NCCL (configure with "
         "-DDUET_WITH_NCCL=ON on a machine with CUDA and NCCL), or use gloo");
  }
  if (!device.is_cuda() || !device.has_index()) {
    fail(ErrorKind::kConfig, "distributed.backend 'nccl' needs an indexed CUDA device, got {}",
         device.str());
  }
  logger->info("distributed: {}, nccl backend on {}", launch.describe(), device.str());
  return make_nccl_communicator(launch, timeout, device);
}

#if !DUET_NCCL
std::unique_ptr<Communicator> make_nccl_communicator(const LaunchInfo&, std::chrono::milliseconds,
                                                     const torch::Device&) {
  fail(ErrorKind::kConfig, "distributed.backend 'nccl': this build has no NCCL");
}
#endif

}  // namespace duet::distributed
