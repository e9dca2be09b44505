#pragma once
// Tests that need a GPU are tagged [cuda] and start with DUET_REQUIRE_CUDA_DEVICE(): without a
// CUDA device they WARN "SKIPPED [cuda]: <test>: ..." and return - also under CI, which has no
// GPU. scripts/test.sh counts these lines after a run, so a run shows how many device tests did
// not run; scripts/gpu_check.sh runs them on a GPU (docs/gpu.md).
#include <torch/cuda.h>

#include <catch2/catch.hpp>

#include "common/device_skip.h"

#define DUET_REQUIRE_CUDA_DEVICE()                                                           \
  do {                                                                                       \
    if (!torch::cuda::is_available()) {                                                      \
      DUET_WARN_DEVICE_SKIP("no CUDA device visible (scripts/gpu_check.sh runs it)");        \
      return;                                                                                \
    }                                                                                        \
  } while (false)
