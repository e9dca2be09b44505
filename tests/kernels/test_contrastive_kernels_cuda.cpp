// The fused contrastive kernels on a real GPU (the nvcc build, duet_kernels_cuda) against the same
// float64 oracle and bounds as on the host layer (contrastive_checks.h), plus shapes too large to
// emulate. Tagged [cuda]; without a CUDA device every case says SKIPPED and returns.
#include <catch2/catch.hpp>

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "common/device_skip.h"
#include "contrastive_checks.h"
#include "kernels/contrastive_kernels.h"

namespace duet::kernels::testing {
namespace {

void cuda_ok(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(status));
  }
}

bool have_device() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    DUET_WARN_DEVICE_SKIP(
        "no CUDA device: the kernels are tested on the host layer (test_contrastive_kernels)");
    return false;
  }
  return true;
}

// Device memory; every copy synchronises, so results are complete when read.
Backend gpu_backend() {
  Backend b;
  b.name = "gpu";
  b.allocate = [](std::size_t bytes) {
    void* p = nullptr;
    cuda_ok(cudaMalloc(&p, bytes), "cudaMalloc");
    return p;
  };
  b.release = [](void* p) { cudaFree(p); };
  b.upload = [](void* device, const void* host, std::size_t bytes) {
    cuda_ok(cudaMemcpy(device, host, bytes, cudaMemcpyHostToDevice), "cudaMemcpy to device");
  };
  b.download = [](void* host, const void* device, std::size_t bytes) {
    cuda_ok(cudaMemcpy(host, device, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy to host");
  };
  b.infonce_forward = gpu::infonce_forward;
  b.infonce_backward = gpu::infonce_backward;
  b.siglip_forward = gpu::siglip_forward;
  b.siglip_backward = gpu::siglip_backward;
  return b;
}

TEST_CASE("fused kernels on the GPU: the host layer's matrix", "[kernels][cuda]") {
  if (!have_device()) {
    return;
  }
  const Backend gpu = gpu_backend();
  for (const Case& c : infonce_one_process_cases()) {
    check_infonce(gpu, c, 11);
  }
  for (const Case& c : infonce_gathered_cases()) {
    check_infonce(gpu, c, 12);
  }
  uint64_t seed = 13;
  for (const Case& c : siglip_cases()) {
    check_siglip(gpu, c, seed++);
  }
  for (const Case& c : odd_row_cases()) {
    check_infonce(gpu, c, 21);
    check_siglip(gpu, c, 22);
  }
  check_misaligned_start(gpu);
  check_unrequested_gradients(gpu);
}

TEST_CASE("fused kernels on the GPU: batches too large to emulate", "[kernels][cuda]") {
  if (!have_device()) {
    return;
  }
  const Backend gpu = gpu_backend();
  // Several column splits and chunks of D; the oracle is O(n·M·D) on the host, so a few
  // thousand rows at most.
  check_infonce(gpu, one_process(2048, 512, DType::kBFloat16), 31);
  check_infonce(gpu, gathered(512, 2048, 1024, 768, DType::kFloat16), 32);
  check_siglip(gpu, one_process(1500, 1152, DType::kBFloat16, 10.0), 33);
  check_infonce(gpu, one_process(1000, 256, DType::kFloat32, 100.0), 34);
}

}  // namespace
}  // namespace duet::kernels::testing
