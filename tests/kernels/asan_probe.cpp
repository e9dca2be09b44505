// Proves that the ASan build of the host execution layer catches out-of-bounds accesses made by a
// kernel, run by CTest in three modes:
//   none    the kernel stays in bounds; must exit 0
//   global  one thread reads one float past a global buffer (heap-buffer-overflow expected)
//   shared  one thread writes one byte past the dynamic shared memory (heap-buffer-overflow
//           expected: the host layer allocates exactly the launch's dynamic bytes)
// The CTest tests for `global` and `shared` pass only if ASan's report appears in the output.
#include <cstdio>
#include <cstring>
#include <vector>

#include "kernels/device.h"
#include "kernels/intrinsics.h"

namespace {

DUET_KERNEL void sum_neighbours(const float* in, float* out, int n, int overrun) {
  DUET_DYNAMIC_SHARED(unsigned char, bytes);
  const int i = static_cast<int>(threadIdx.x);
  duet::kernels::smem_store(&bytes[i], static_cast<unsigned char>(i));
  duet::kernels::block_sync();
  // overrun 1: thread n-1 reads in[n]; overrun 2: thread 0 writes bytes[n] (raw, as a kernel bug
  // would: smem_store's own bounds check would stop it first).
  const int last = overrun == 1 ? n : n - 1;
  out[i] = in[i] + (i == n - 1 ? in[last] : in[i + 1]);
  if (overrun == 2 && i == 0) {
    bytes[n] = 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "none";
  const int overrun = std::strcmp(mode, "global") == 0   ? 1
                      : std::strcmp(mode, "shared") == 0 ? 2
                                                         : 0;
  const int n = 64;
  const std::vector<float> in(n, 1.0f);  // exactly n floats: in[n] is past the allocation
  std::vector<float> out(n);
  std::printf("asan probe: mode %s, launching\n", mode);
  std::fflush(stdout);
  DUET_LAUNCH(sum_neighbours, dim3(1), dim3(n), n, nullptr, in.data(), out.data(), n, overrun);
  std::printf("asan probe: finished, out[0] = %g\n", static_cast<double>(out[0]));
  return out[0] == 2.0f ? 0 : 1;
}
