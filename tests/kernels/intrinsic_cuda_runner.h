#pragma once
// Runs the kernels of intrinsic_test_kernels.cuh on a real GPU (intrinsic_cuda_runner.cu, built
// by nvcc) for test_intrinsics_cuda.cpp, which runs the same kernels through the host execution
// layer and compares. Plain C++ interface: host vectors in and out, device memory inside.
// Enumerations are passed as their int values (the two builds' enum types are distinct).
#include <cstdint>
#include <string>
#include <vector>

namespace duet::kernels::testing::gpu {

// Whether a CUDA device can run the kernels; if not, `why` says what is missing.
bool available(std::string* why);

// The GPU's name and compute capability, for the test log.
std::string describe_device();

void shfl(const std::vector<float>& in, const std::vector<int>& src_lanes, int lane_mask,
          std::vector<float>& xor_out, std::vector<float>& idx_out);

void mma(int kind, const std::vector<uint32_t>& a, const std::vector<uint32_t>& b,
         const std::vector<float>& c, std::vector<float>& d);

void ldmatrix(int matrices, bool trans, const std::vector<uint16_t>& rows,
              const std::vector<int>& row_of_lane, std::vector<uint32_t>& out);

void ldmatrix_mma(int kind, int plan, const std::vector<uint16_t>& a,
                  const std::vector<uint16_t>& b, const std::vector<uint16_t>& bt,
                  const std::vector<float>& c, std::vector<float>& d);

void cp_async(const std::vector<unsigned char>& src, const std::vector<int>& src_bytes,
              std::vector<unsigned char>& out);

struct Conversions {
  std::vector<uint16_t> bf16;
  std::vector<uint16_t> f16;
  std::vector<uint32_t> tf32;
  std::vector<uint32_t> packed_bf16;
  std::vector<uint32_t> packed_f16;
  std::vector<float> from_bf16;
  std::vector<float> from_f16;
};
// in.size() == bits.size().
Conversions convert(const std::vector<float>& in, const std::vector<uint16_t>& bits);

}  // namespace duet::kernels::testing::gpu
