// The GPU side of the [cuda] intrinsic test: the kernels of intrinsic_test_kernels.cuh compiled
// by nvcc, run on device copies of host vectors (see intrinsic_cuda_runner.h).
#include "intrinsic_cuda_runner.h"

#include <stdexcept>

#include "intrinsic_test_kernels.cuh"

namespace duet::kernels::testing::gpu {
namespace {

// A device copy of a host vector; copy_back brings it home.
template <class T>
class DeviceArray {
 public:
  explicit DeviceArray(const std::vector<T>& host) : size_(host.size()) {
    DUET_CUDA_CHECK(cudaMalloc(&data_, bytes()));
    DUET_CUDA_CHECK(cudaMemcpy(data_, host.data(), bytes(), cudaMemcpyHostToDevice));
  }
  explicit DeviceArray(std::size_t size) : size_(size) {
    DUET_CUDA_CHECK(cudaMalloc(&data_, bytes()));
    DUET_CUDA_CHECK(cudaMemset(data_, 0, bytes()));
  }
  ~DeviceArray() { cudaFree(data_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;

  T* get() const { return data_; }
  void copy_back(std::vector<T>& host) const {
    DUET_CUDA_CHECK(cudaDeviceSynchronize());
    host.resize(size_);
    DUET_CUDA_CHECK(cudaMemcpy(host.data(), data_, bytes(), cudaMemcpyDeviceToHost));
  }

 private:
  std::size_t bytes() const { return size_ * sizeof(T) + (size_ == 0 ? 1 : 0); }

  T* data_ = nullptr;
  std::size_t size_;
};

}  // namespace

bool available(std::string* why) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess || count == 0) {
    if (why != nullptr) {
      *why = status != cudaSuccess
                 ? std::string("cudaGetDeviceCount: ") + cudaGetErrorString(status)
                 : std::string("no CUDA device");
    }
    cudaGetLastError();  // clear the sticky error for later calls
    return false;
  }
  cudaDeviceProp properties{};
  DUET_CUDA_CHECK(cudaGetDeviceProperties(&properties, 0));
  if (properties.major < 8) {
    if (why != nullptr) {
      *why = std::string(properties.name) + " is below sm_80 (mma.m16n8k16 bf16, cp.async)";
    }
    return false;
  }
  return true;
}

std::string describe_device() {
  cudaDeviceProp properties{};
  DUET_CUDA_CHECK(cudaGetDeviceProperties(&properties, 0));
  return std::string(properties.name) + " (sm_" + std::to_string(properties.major) +
         std::to_string(properties.minor) + ")";
}

void shfl(const std::vector<float>& in, const std::vector<int>& src_lanes, int lane_mask,
          std::vector<float>& xor_out, std::vector<float>& idx_out) {
  const DeviceArray<float> d_in(in);
  const DeviceArray<int> d_src(src_lanes);
  const DeviceArray<float> d_xor(in.size());
  const DeviceArray<float> d_idx(in.size());
  launch_shfl(d_in.get(), d_src.get(), d_xor.get(), d_idx.get(), lane_mask,
              static_cast<int>(in.size()), nullptr);
  d_xor.copy_back(xor_out);
  d_idx.copy_back(idx_out);
}

void mma(int kind, const std::vector<uint32_t>& a, const std::vector<uint32_t>& b,
         const std::vector<float>& c, std::vector<float>& d) {
  const DeviceArray<uint32_t> d_a(a);
  const DeviceArray<uint32_t> d_b(b);
  const DeviceArray<float> d_c(c);
  const DeviceArray<float> d_d(c.size());
  launch_mma(static_cast<MmaKind>(kind), d_a.get(), d_b.get(), d_c.get(), d_d.get(), nullptr);
  d_d.copy_back(d);
}

void ldmatrix(int matrices, bool trans, const std::vector<uint16_t>& rows,
              const std::vector<int>& row_of_lane, std::vector<uint32_t>& out) {
  const DeviceArray<uint16_t> d_rows(rows);
  const DeviceArray<int> d_lanes(row_of_lane);
  const DeviceArray<uint32_t> d_out(static_cast<std::size_t>(32 * matrices));
  if (matrices == 1 && !trans) {
    launch_ldmatrix<1, false>(d_rows.get(), d_lanes.get(), d_out.get(), nullptr);
  } else if (matrices == 2 && !trans) {
    launch_ldmatrix<2, false>(d_rows.get(), d_lanes.get(), d_out.get(), nullptr);
  } else if (matrices == 4 && !trans) {
    launch_ldmatrix<4, false>(d_rows.get(), d_lanes.get(), d_out.get(), nullptr);
  } else if (matrices == 2 && trans) {
    launch_ldmatrix<2, true>(d_rows.get(), d_lanes.get(), d_out.get(), nullptr);
  } else if (matrices == 4 && trans) {
    launch_ldmatrix<4, true>(d_rows.get(), d_lanes.get(), d_out.get(), nullptr);
  } else {
    throw std::invalid_argument("gpu::ldmatrix: no x" + std::to_string(matrices) +
                                (trans ? ".trans" : "") + " form");
  }
  d_out.copy_back(out);
}

namespace {

template <MmaKind kKind>
void ldmatrix_mma_plan(int plan, const uint16_t* a, const uint16_t* b, const uint16_t* bt,
                       const float* c, float* d) {
  switch (static_cast<LoadPlan>(plan)) {
    case LoadPlan::kX4AndX4Trans:
      launch_ldmatrix_mma<kKind, LoadPlan::kX4AndX4Trans>(a, b, bt, c, d, nullptr);
      break;
    case LoadPlan::kX1AndX2:
      launch_ldmatrix_mma<kKind, LoadPlan::kX1AndX2>(a, b, bt, c, d, nullptr);
      break;
    case LoadPlan::kX2AndX2Trans:
      launch_ldmatrix_mma<kKind, LoadPlan::kX2AndX2Trans>(a, b, bt, c, d, nullptr);
      break;
    case LoadPlan::kX4AndX1:
      launch_ldmatrix_mma<kKind, LoadPlan::kX4AndX1>(a, b, bt, c, d, nullptr);
      break;
  }
}

}  // namespace

void ldmatrix_mma(int kind, int plan, const std::vector<uint16_t>& a,
                  const std::vector<uint16_t>& b, const std::vector<uint16_t>& bt,
                  const std::vector<float>& c, std::vector<float>& d) {
  const DeviceArray<uint16_t> d_a(a);
  const DeviceArray<uint16_t> d_b(b);
  const DeviceArray<uint16_t> d_bt(bt);
  const DeviceArray<float> d_c(c);
  const DeviceArray<float> d_d(c.size());
  if (static_cast<MmaKind>(kind) == MmaKind::kBf16) {
    ldmatrix_mma_plan<MmaKind::kBf16>(plan, d_a.get(), d_b.get(), d_bt.get(), d_c.get(), d_d.get());
  } else {
    ldmatrix_mma_plan<MmaKind::kF16>(plan, d_a.get(), d_b.get(), d_bt.get(), d_c.get(), d_d.get());
  }
  d_d.copy_back(d);
}

void cp_async(const std::vector<unsigned char>& src, const std::vector<int>& src_bytes,
              std::vector<unsigned char>& out) {
  const DeviceArray<unsigned char> d_src(src);
  const DeviceArray<int> d_bytes(src_bytes);
  const DeviceArray<unsigned char> d_out(16 * src_bytes.size());
  launch_cp_async(d_src.get(), d_bytes.get(), d_out.get(), static_cast<int>(src_bytes.size()),
                  nullptr);
  d_out.copy_back(out);
}

Conversions convert(const std::vector<float>& in, const std::vector<uint16_t>& bits) {
  const std::size_t n = in.size();
  const DeviceArray<float> d_in(in);
  const DeviceArray<uint16_t> d_bits(bits);
  const DeviceArray<uint16_t> d_bf16(n);
  const DeviceArray<uint16_t> d_f16(n);
  const DeviceArray<uint32_t> d_tf32(n);
  const DeviceArray<uint32_t> d_packed_bf16(n);
  const DeviceArray<uint32_t> d_packed_f16(n);
  const DeviceArray<float> d_from_bf16(n);
  const DeviceArray<float> d_from_f16(n);
  const ConvertBuffers buffers{d_in.get(),         d_bits.get(),      d_bf16.get(),
                               d_f16.get(),        d_tf32.get(),      d_packed_bf16.get(),
                               d_packed_f16.get(), d_from_bf16.get(), d_from_f16.get()};
  launch_convert(buffers, static_cast<int>(n), nullptr);
  Conversions out;
  d_bf16.copy_back(out.bf16);
  d_f16.copy_back(out.f16);
  d_tf32.copy_back(out.tf32);
  d_packed_bf16.copy_back(out.packed_bf16);
  d_packed_f16.copy_back(out.packed_f16);
  d_from_bf16.copy_back(out.from_bf16);
  d_from_f16.copy_back(out.from_f16);
  return out;
}

}  // namespace duet::kernels::testing::gpu
