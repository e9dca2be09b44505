// Compile check of the CUDA branch of kernels/intrinsics.h and kernels/device.h: one kernel that
// uses every intrinsic, and a launcher that uses every device.h macro. Built by nvcc for sm_80 and
// sm_90 (duet_kernels_intrinsics_check) with ptxas's resource report in the build log, so CI
// proves the CUDA branch compiles on a machine without a GPU. Nothing calls it.
#include "kernels/device.h"
#include "kernels/intrinsics.h"

namespace duet::kernels::check {

// Touches every intrinsic once; kTile only proves that template kernels launch through
// DUET_LAUNCH((kernel<...>), ...).
template <int kTile>
DUET_KERNEL void __launch_bounds__(128)
    every_intrinsic(const float* __restrict__ in, float* __restrict__ out, int n) {
  DUET_DYNAMIC_SHARED(unsigned char, smem);
  __shared__ __align__(16) uint16_t tile[kTile * 64];

  const int lane = lane_id();
  const int warp = warp_id();
  cp_async_16(smem + 16 * threadIdx.x, in + 4 * (blockIdx.x * blockDim.x + threadIdx.x),
              n > 0 ? 16 : 0);
  cp_async_commit();
  cp_async_wait<0>();
  for (int i = static_cast<int>(threadIdx.x); i < kTile * 64; i += static_cast<int>(blockDim.x)) {
    smem_store(&tile[i], float_to_bf16_bits(in[i]));
  }
  block_sync();

  uint32_t x1[1];
  uint32_t x2[2];
  uint32_t x4[4];
  uint32_t x2t[2];
  uint32_t x4t[4];
  const uint16_t* row = &tile[(lane % 16) * 8];
  ldmatrix_x1(x1, row);
  ldmatrix_x2(x2, row);
  ldmatrix_x4(x4, row);
  ldmatrix_x2_trans(x2t, row);
  ldmatrix_x4_trans(x4t, row);

  const float c[4] = {smem_load(reinterpret_cast<const float*>(smem) + threadIdx.x), 0.0f, 0.0f,
                      f16_bits_to_float(float_to_f16_bits(in[0]))};
  float d[4];
  mma_m16n8k16_bf16(d, x4, x2t, c);
  const uint32_t b16[2] = {x1[0], x2[0]};
  mma_m16n8k16_f16(d, x4t, b16, d);
  const uint32_t a32[4] = {to_tf32(d[0]), to_tf32(d[1]), to_tf32(d[2]), to_tf32(d[3])};
  const uint32_t b32[2] = {pack_bf16x2(d[0], d[1]), pack_f16x2(d[2], d[3])};
  mma_m16n8k8_tf32(d, a32, b32, d);

  float sum = d[0] + d[1] + d[2] + d[3] + bf16_bits_to_float(static_cast<uint16_t>(x2[1]));
  sum += shfl_xor(sum, 16);
  sum = shfl_idx(sum, (lane + warp) & 31);
  warp_sync();
  const float4 wide = make_float4(sum, d[1], d[2], d[3]);
  smem_store(reinterpret_cast<float4*>(smem) + threadIdx.x, wide);
  out[blockIdx.x * blockDim.x + threadIdx.x] = sum;
  atomic_add(out + n, wide.y);
}

void launch_every_intrinsic(const float* in, float* out, int n, void* stream) {
  constexpr std::size_t kDynamicSmem = 128 * 16;
  DUET_SET_MAX_DYNAMIC_SMEM((every_intrinsic<2>), kDynamicSmem);
  DUET_LAUNCH((every_intrinsic<2>), dim3(1), dim3(128), kDynamicSmem, stream, in, out, n);
  DUET_CUDA_CHECK(cudaPeekAtLastError());
}

}  // namespace duet::kernels::check
