#pragma once
// The one line a test that needs a GPU prints when it has none: "SKIPPED [cuda]: <test>: <why>".
// scripts/test.sh counts these lines after a run (CI has no GPU), so every device test must say
// it this way; scripts/gpu_check.sh runs them on a GPU (docs/gpu.md). Torch-free, for the kernel
// tests that talk to the CUDA runtime directly.
#include <catch2/catch.hpp>

#define DUET_WARN_DEVICE_SKIP(why) \
  WARN("SKIPPED [cuda]: " << ::Catch::getResultCapture().getCurrentTestName() << ": " << why)
