#include "common/torch_runtime.h"

#include <link.h>

#include <algorithm>
#include <vector>

#include <ATen/Parallel.h>
#include <ATen/Version.h>

#include "common/logging.h"

namespace duet {
namespace {

std::vector<std::string> loaded_libraries() {
  std::vector<std::string> names;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) {
        if (info->dlpi_name != nullptr && info->dlpi_name[0] != '\0') {
          static_cast<std::vector<std::string>*>(data)->emplace_back(info->dlpi_name);
        }
        return 0;
      },
      &names);
  return names;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

std::string detect_blas() {
  const std::string config = at::show_config();
  if (contains(config, "BLAS_INFO=mkl")) {
    return "mkl";  // statically linked into the PyPI wheel
  }
  // Otherwise LibTorch calls the system's libblas.so.3: look at what the loader resolved.
  bool reference = false;
  for (const auto& lib : loaded_libraries()) {
    for (const char* fast : {"openblas", "libmkl", "libblis", "atlas"}) {
      if (contains(lib, fast)) {
        return fast[0] == 'l' ? std::string(fast + 3) : std::string(fast);
      }
    }
    if (contains(lib, "/blas/libblas.so") || contains(lib, "libblas.so")) {
      reference = true;
    }
  }
  return reference ? "reference" : "unknown";
}

bool check_blas() {
  const std::string blas = detect_blas();
  auto logger = log::get("torch");
  if (blas == "reference" || blas == "unknown") {
    logger->warn(
        "!!! LibTorch is not using an optimised BLAS (found: {}). Matrix products will be "
        "~100x slower. Install libopenblas-dev (scripts/setup.sh does) or use the PyPI "
        "torch wheel's LibTorch. !!!",
        blas);
    return false;
  }
  logger->debug("BLAS: {}", blas);
  return true;
}

void set_num_threads(int threads) {
  if (threads > 0) {
    at::set_num_threads(threads);
  }
}

}  // namespace duet
