#pragma once
// Process-wide LibTorch set-up: thread count and the optimised-BLAS check.
#include <string>

namespace duet {

// Which BLAS LibTorch reaches: "mkl", "openblas", ... or "reference" / "unknown".
std::string detect_blas();

// Warns loudly when LibTorch is not using an optimised BLAS (the reference BLAS is ~100x slower
// on matrix products). Returns true when the BLAS is optimised.
bool check_blas();

// Sets intra-op threads (0 keeps LibTorch's default).
void set_num_threads(int threads);

}  // namespace duet
