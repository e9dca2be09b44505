#pragma once
// A kernel laid out as duet's kernels are (kernel and launcher in a .cu, the launcher declared in
// a header, raw pointers and a stream), to show and test duet_kernel_test's handling of .cu
// sources: the same example_axpy.cu is compiled by nvcc (into duet_kernels_cuda_test_runner,
// when CUDA is on) and as host C++ (test_kernels_host and its ASan twin).
namespace duet::kernels::example {

// y[i] = a * x[i] + y[i] for i < n; x and y 16-byte aligned. Stages x through shared memory with
// cp.async, partial chunks zero-filled.
void axpy(float a, const float* x, float* y, int n, void* stream);

}  // namespace duet::kernels::example
