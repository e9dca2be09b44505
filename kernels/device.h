#pragma once
// Portability header for duet's CUDA kernels: the one place, with kernels/intrinsics.h, where the
// nvcc build and the host (g++) build differ. Kernel sources include this and compile unchanged
// under both:
//   - nvcc (__CUDACC__): DUET_HOST_BUILD is 0 and everything maps to CUDA;
//   - g++: DUET_HOST_BUILD is 1 and kernels run on the CPU through the host execution layer
//     (kernels/host/runtime.h): __global__/__device__ vanish, threadIdx & co. show the running
//     simulated thread, DUET_LAUNCH runs the grid on fibers.
//
// Host-build choices (see docs/kernels_host.md):
//   - `__shared__` is `static thread_local`: blocks of a launch run one after another on the
//     launching OS thread, so one instance per OS thread is one instance per running block, and
//     concurrent launches from different OS threads do not share it. Its contents persist from
//     block to block and launch to launch and are NOT poisoned; only DUET_DYNAMIC_SHARED memory is.
//   - DUET_CUDA_CHECK evaluates nothing: a CUDA runtime call has no host meaning. Work a result
//     depends on (zeroing an output, say) belongs in a kernel, so that the host build runs it too.
//   - DUET_SET_MAX_DYNAMIC_SMEM is a no-op; the host launch itself refuses dynamic shared memory
//     above Options::max_dynamic_smem_bytes (H100's 232,448 by default), as the GPU would.
#include <cstddef>
#include <cstdint>

#if defined(__CUDACC__)

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>
#include <utility>

#define DUET_HOST_BUILD 0

#define DUET_DEVICE __device__ __forceinline__
#define DUET_KERNEL __global__
// Unrolls the next loop (register arrays indexed by its counter stay in registers).
#define DUET_UNROLL _Pragma("unroll")

namespace duet::kernels::detail {

// Throws std::runtime_error naming the failed expression, where it is and CUDA's message.
inline void cuda_check(cudaError_t status, const char* expression, const char* file, int line) {
  if (status != cudaSuccess) {
    throw std::runtime_error(std::string("CUDA error: ") + expression + " failed at " + file + ":" +
                             std::to_string(line) + ": " + cudaGetErrorString(status));
  }
}

// DUET_LAUNCH's CUDA form: the launch, then a checked cudaGetLastError naming the kernel.
template <class... Params, class... Args>
void launch_cuda(const char* kernel_name, const char* file, int line, void (*kernel)(Params...),
                 dim3 grid, dim3 block, std::size_t dynamic_smem_bytes, void* stream,
                 Args&&... args) {
  kernel<<<grid, block, dynamic_smem_bytes, static_cast<cudaStream_t>(stream)>>>(
      std::forward<Args>(args)...);
  cuda_check(cudaGetLastError(), kernel_name, file, line);
}

}  // namespace duet::kernels::detail

#define DUET_CUDA_CHECK(expr) ::duet::kernels::detail::cuda_check((expr), #expr, __FILE__, __LINE__)

// `name` points at the block's dynamic shared memory, 16-byte aligned.
#define DUET_DYNAMIC_SHARED(T, name)                                  \
  extern __shared__ __align__(16) unsigned char duet_dynamic_smem_[]; \
  T* name = reinterpret_cast<T*>(duet_dynamic_smem_)

// DUET_LAUNCH(kernel, grid, block, dynamic_smem_bytes, stream, args...); a template kernel is
// written in parentheses: DUET_LAUNCH((my_kernel<float, 4>), ...). `stream` is a void*.
#define DUET_LAUNCH(kernel, grid, block, dynamic_smem_bytes, ...)                        \
  ::duet::kernels::detail::launch_cuda(#kernel, __FILE__, __LINE__, kernel, grid, block, \
                                       dynamic_smem_bytes, __VA_ARGS__)

#define DUET_SET_MAX_DYNAMIC_SMEM(kernel, bytes)                                              \
  DUET_CUDA_CHECK(cudaFuncSetAttribute((kernel), cudaFuncAttributeMaxDynamicSharedMemorySize, \
                                       static_cast<int>(bytes)))

#else  // host build

#include "kernels/host/runtime.h"

#define DUET_HOST_BUILD 1

using ::duet::kernels::host::dim3;
using ::duet::kernels::host::uint3;

// CUDA's vector types used for wide loads and stores, with CUDA's sizes and alignment.
namespace duet::kernels::host {
struct __attribute__((aligned(8))) int2 {
  int x, y;
};
struct __attribute__((aligned(8))) uint2 {
  unsigned x, y;
};
struct __attribute__((aligned(8))) float2 {
  float x, y;
};
struct __attribute__((aligned(16))) int4 {
  int x, y, z, w;
};
struct __attribute__((aligned(16))) uint4 {
  unsigned x, y, z, w;
};
struct __attribute__((aligned(16))) float4 {
  float x, y, z, w;
};
}  // namespace duet::kernels::host
using ::duet::kernels::host::float2;
using ::duet::kernels::host::float4;
using ::duet::kernels::host::int2;
using ::duet::kernels::host::int4;
using ::duet::kernels::host::uint2;
using ::duet::kernels::host::uint4;
inline constexpr int2 make_int2(int x, int y) { return {x, y}; }
inline constexpr uint2 make_uint2(unsigned x, unsigned y) { return {x, y}; }
inline constexpr float2 make_float2(float x, float y) { return {x, y}; }
inline constexpr int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }
inline constexpr uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) {
  return {x, y, z, w};
}
inline constexpr float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }

inline constexpr int warpSize = 32;  // NOLINT(readability-identifier-naming): CUDA's name

// Read-only views of the running simulated thread's indices, spelled as in CUDA.
#define threadIdx (static_cast<const ::uint3&>(::duet::kernels::host::builtins::thread_idx))
#define blockIdx (static_cast<const ::uint3&>(::duet::kernels::host::builtins::block_idx))
#define blockDim (static_cast<const ::dim3&>(::duet::kernels::host::builtins::block_dim))
#define gridDim (static_cast<const ::dim3&>(::duet::kernels::host::builtins::grid_dim))

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static thread_local
// GCC's aligned attribute, not alignas: it may stand where CUDA puts __align__, in the middle of
// a declaration's specifiers (`__shared__ __align__(16) float tile[64];`), which alignas may not.
#define __align__(n) __attribute__((aligned(n)))
// g++ and clang++ already understand __restrict__; other host compilers get nothing.
#if !defined(__GNUC__)
#define __restrict__
#endif

#define DUET_DEVICE inline
#define DUET_KERNEL
#define DUET_UNROLL

#define DUET_CUDA_CHECK(expr) static_cast<void>(0)

// `name` points at the block's dynamic shared memory: exactly the launch's bytes, 16-byte
// aligned, every byte 0xFF (NaN as float, bf16 and f16) at the start of each block.
#define DUET_DYNAMIC_SHARED(T, name) \
  T* name = reinterpret_cast<T*>(::duet::kernels::host::dynamic_shared_memory())

#define DUET_LAUNCH(kernel, grid, block, dynamic_smem_bytes, ...)                        \
  ::duet::kernels::host::launch_kernel(#kernel, kernel, grid, block, dynamic_smem_bytes, \
                                       __VA_ARGS__)

#define DUET_SET_MAX_DYNAMIC_SMEM(kernel, bytes) \
  (static_cast<void>(kernel), static_cast<void>(bytes))

#endif  // __CUDACC__
