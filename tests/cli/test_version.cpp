// `duet --version` says what this build can do, and every statement is true of the build that
// prints it: the fused loss kernels as losses::fused_kernels_available() reports them (not "on"
// because a CUDA toolkit was found), the NCCL communicator as distributed::nccl_available() does.
#include <catch2/catch.hpp>

#include <string>

#include "common/test_util.h"
#include "distributed/communicator.h"
#include "losses/implementation.h"

using duet::test::run_duet;

TEST_CASE("duet --version states the fused kernels and NCCL as the code reports them") {
  const auto version = run_duet({"--version"});
  REQUIRE(version.exit_code == 0);
  const std::string fused = duet::losses::fused_kernels_available() ? "yes" : "no";
  const std::string nccl = duet::distributed::nccl_available() ? "yes" : "no";
  CHECK_THAT(version.out, Catch::Contains("fused CUDA loss kernels: " + fused));
  CHECK_THAT(version.out, Catch::Contains("NCCL communicator: " + nccl));
  // The old wording claimed "CUDA kernels on" whenever nvcc was found, with no kernel built.
  CHECK_THAT(version.out, !Catch::Contains("CUDA kernels on"));
}
