// See example_axpy.h. Each thread moves one 16-byte chunk of x (4 floats) into shared memory with
// cp_async_16, then updates its 4 elements of y; the last chunk is partial (src_bytes < 16).
#include "example_axpy.h"

#include "kernels/device.h"
#include "kernels/intrinsics.h"

namespace duet::kernels::example {
namespace {

constexpr int kThreads = 128;
constexpr int kPerThread = 4;  // floats per 16-byte chunk

DUET_KERNEL void __launch_bounds__(kThreads)
    axpy_kernel(float a, const float* __restrict__ x, float* __restrict__ y, int n) {
  DUET_DYNAMIC_SHARED(float, tile);  // [kThreads * kPerThread]
  const int t = static_cast<int>(threadIdx.x);
  const int first = static_cast<int>(blockIdx.x) * kThreads * kPerThread + kPerThread * t;
  const int left = n - first;
  const int valid = left <= 0 ? 0 : left < kPerThread ? left : kPerThread;
  // With nothing to copy, the source is not read: any aligned address will do.
  cp_async_16(tile + kPerThread * t, valid > 0 ? x + first : x,
              valid * static_cast<int>(sizeof(float)));
  cp_async_commit();
  cp_async_wait<0>();
  for (int i = 0; i < valid; ++i) {
    y[first + i] = a * smem_load(&tile[kPerThread * t + i]) + y[first + i];
  }
}

}  // namespace

void axpy(float a, const float* x, float* y, int n, void* stream) {
  if (n <= 0) {
    return;
  }
  const int per_block = kThreads * kPerThread;
  DUET_LAUNCH(axpy_kernel, dim3((n + per_block - 1) / per_block), dim3(kThreads),
              per_block * sizeof(float), stream, a, x, y, n);
}

}  // namespace duet::kernels::example
