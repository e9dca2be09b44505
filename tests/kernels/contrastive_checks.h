#pragma once
// The checks of the fused contrastive kernels against the float64 oracle of tests/losses, shared
// by the host-layer test (test_contrastive_kernels: the emulated launchers on host memory, plain
// and under AddressSanitizer) and the [cuda] test (the gpu launchers on device memory): loss and
// every gradient of InfoNCE and SigLIP, one process and a rank's gathered form, bf16 / fp16 /
// fp32. Outputs are poisoned (NaN) before each run, so an element no thread writes fails.
//
// Error bounds are derived, not tuned. The oracle runs on the same rounded inputs, so what is left
// is what the kernels round: each term g·k of a gradient carries a relative error e_G (G stored
// in the input precision u; s = t·x·y summed in fp32 over D, off by at most D·2^-24·t; exp, log,
// the 3×TF32 split) and the fp32 sum over M terms adds (M + 4)·2^-24 — componentwise at most
// (e_G + e_acc)·m with m the oracle's magnitude (Σ of |terms|). Where G cancels to nearly 0 at a
// positive (a confident match) its absolute fp32 error 2^-24·W adds an absolute term. Gradients
// are written in the input dtype: that rounding adds u·|want| and, for fp16's subnormals (below
// 2^-14), half their spacing, 2^-25. Every bound is doubled for slack. A wrong index or a missed
// tile is off by O(m), orders above these.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kernels/contrastive_kernels.h"

namespace duet::kernels::testing {

struct Case {
  int64_t n = 1;
  int64_t m = 1;
  int64_t dim = 8;
  int64_t offset = 0;
  bool one_process = true;
  DType dtype = DType::kBFloat16;
  double log_scale = 2.6592600369327779;  // ln(1/0.07)
  double bias = -10.0;

  std::string describe() const;
};

Case one_process(int64_t n, int64_t dim, DType dtype, double t = 1 / 0.07);
Case gathered(int64_t n, int64_t m, int64_t offset, int64_t dim, DType dtype, double t = 1 / 0.07);

// Where the kernels run: their launchers and how their memory is reached.
struct Backend {
  std::string name;
  std::function<void*(std::size_t)> allocate;
  std::function<void(void*)> release;
  std::function<void(void* device, const void* host, std::size_t bytes)> upload;
  std::function<void(void* host, const void* device, std::size_t bytes)> download;
  void (*infonce_forward)(const InfoNCEForwardParams&, void*) = nullptr;
  void (*infonce_backward)(const InfoNCEBackwardParams&, void*) = nullptr;
  void (*siglip_forward)(const SigLipForwardParams&, void*) = nullptr;
  void (*siglip_backward)(const SigLipBackwardParams&, void*) = nullptr;
};

// Runs forward and backward of one case and CHECKs every output against the oracle. `seed` picks
// the random (L2-normalised) embeddings.
void check_infonce(const Backend& backend, const Case& c, uint64_t seed);
void check_siglip(const Backend& backend, const Case& c, uint64_t seed);

// Operands that start 2 bytes off alignment (element-wise loads) give bitwise the loss of
// aligned ones (cp.async).
void check_misaligned_start(const Backend& backend);

// Backward with only d log t asked for writes it right and nothing else.
void check_unrequested_gradients(const Backend& backend);

// The matrix every backend runs: n, M in {1, 7, 64, 129, 300}, D in {8, 64, 200, 256, 300, 512,
// 520, 1152} (every kernel variant: resident p up to 512, streamed beyond), gathered
// offsets, t 1..100, b ±10 (SigLIP, alternating), each dtype; and rows that are not whole 16-byte
// chunks (D = 7 bf16, 100 fp16, 13 fp32), which take the element-wise loads.
std::vector<Case> infonce_one_process_cases();
std::vector<Case> infonce_gathered_cases();
std::vector<Case> siglip_cases();
std::vector<Case> odd_row_cases();

}  // namespace duet::kernels::testing
