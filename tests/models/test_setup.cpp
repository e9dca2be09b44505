// One intra-op thread for the whole model test run. These tests use tiny shapes that gain
// nothing from threads, while OpenMP workers that spin-wait on a loaded 2-core box (ctest -j2,
// builds) make each small op ~50x slower: 0.06 s vs 1.6-6 s for a whole-model test here.
#define CATCH_CONFIG_EXTERNAL_INTERFACES
#include <torch/torch.h>
#include <catch2/catch.hpp>

namespace {

struct SingleThreadListener : Catch::TestEventListenerBase {
  using TestEventListenerBase::TestEventListenerBase;
  void testRunStarting(Catch::TestRunInfo const& /*info*/) override { torch::set_num_threads(1); }
};

}  // namespace

CATCH_REGISTER_LISTENER(SingleThreadListener)
