#pragma once
// The message of the HostKernelError a kernel launch throws, for matching with CHECK_THAT. A
// launch that throws nothing, or something else, fails the test.
#include <catch2/catch.hpp>

#include <string>

#include "kernels/host/runtime.h"

namespace duet::kernels::testing {

template <class Launch>
std::string kernel_error_of(Launch launch) {
  try {
    launch();
  } catch (const host::HostKernelError& error) {
    return error.what();
  }
  FAIL("the launch did not throw duet::kernels::host::HostKernelError");
  return {};
}

}  // namespace duet::kernels::testing
