// The fused contrastive kernels (kernels/contrastive.cu) run from their own source on the host
// execution layer, plain and (the _asan twin) under AddressSanitizer, against the float64 oracle
// of tests/losses: the shared matrix of contrastive_checks.h through the emulated launchers on
// host memory, plus what only the host run can show (alignment paths, outputs not asked for,
// argument errors). The same matrix runs on a GPU in test_contrastive_kernels_cuda.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "contrastive_checks.h"
#include "kernels/contrastive_kernels.h"
#include "losses/loss_oracle_math.h"

namespace duet::kernels::testing {
namespace {

// Host memory stands in for device memory: malloc'd with exactly the bytes asked, so ASan sees an
// overrun of any buffer, workspaces included.
Backend emulated_backend() {
  Backend b;
  b.name = "emulated (host execution layer)";
  b.allocate = [](std::size_t bytes) { return std::malloc(bytes); };
  b.release = [](void* p) { std::free(p); };
  b.upload = [](void* device, const void* host, std::size_t bytes) {
    std::memcpy(device, host, bytes);
  };
  b.download = [](void* host, const void* device, std::size_t bytes) {
    std::memcpy(host, device, bytes);
  };
  b.infonce_forward = emulated::infonce_forward;
  b.infonce_backward = emulated::infonce_backward;
  b.siglip_forward = emulated::siglip_forward;
  b.siglip_backward = emulated::siglip_backward;
  return b;
}

constexpr DType kBf16 = DType::kBFloat16;

TEST_CASE("fused InfoNCE in one process against the float64 oracle", "[kernels][infonce]") {
  for (const Case& c : infonce_one_process_cases()) {
    check_infonce(emulated_backend(), c, 11);
  }
}

TEST_CASE("fused InfoNCE for a rank's rows against the gathered batch", "[kernels][infonce]") {
  for (const Case& c : infonce_gathered_cases()) {
    check_infonce(emulated_backend(), c, 12);
  }
}

TEST_CASE("fused SigLIP in one process and gathered against the float64 oracle",
          "[kernels][siglip]") {
  uint64_t seed = 13;
  for (const Case& c : siglip_cases()) {
    check_siglip(emulated_backend(), c, seed++);
  }
}

TEST_CASE("rows that are not whole 16-byte chunks take the element-wise loads",
          "[kernels][infonce][siglip]") {
  for (const Case& c : odd_row_cases()) {
    check_infonce(emulated_backend(), c, 21);
    check_siglip(emulated_backend(), c, 22);
  }
}

TEST_CASE("a misaligned start takes the element-wise loads too", "[kernels][infonce]") {
  check_misaligned_start(emulated_backend());
}

TEST_CASE("gradients that are not asked for are not written", "[kernels][infonce]") {
  check_unrequested_gradients(emulated_backend());
}

TEST_CASE("bad launcher arguments are refused naming the field", "[kernels]") {
  std::vector<uint16_t> rows(4 * 8, 0);
  const float log_scale = 1.0f;
  LossOperands in;
  in.image_local = in.text_local = rows.data();
  in.n = in.m = 4;
  in.dim = 8;
  in.one_process = true;
  in.dtype = kBf16;
  in.log_scale = &log_scale;
  float loss = 0.0f;
  std::vector<float> lse(4);
  std::vector<unsigned char> space(infonce_forward_workspace_bytes(4, 4, true));
  InfoNCEForwardParams params{in, &loss, lse.data(), lse.data(), nullptr};
  CHECK_THROWS_WITH(emulated::infonce_forward(params, nullptr),
                    Catch::Contains("infonce_forward: workspace must be a device pointer"));
  params.workspace = space.data();
  params.in.offset = 1;
  CHECK_THROWS_WITH(emulated::infonce_forward(params, nullptr), Catch::Contains("offset 1"));
  params.in = in;
  params.in.one_process = false;
  CHECK_THROWS_WITH(emulated::infonce_forward(params, nullptr),
                    Catch::Contains("image_all and text_all must be device pointers"));
  SigLipForwardParams siglip{in, &loss, space.data()};
  CHECK_THROWS_WITH(emulated::siglip_forward(siglip, nullptr), Catch::Contains("bias"));
}

}  // namespace
}  // namespace duet::kernels::testing
