// The training loop's host reads (see host_reads.h): one stacked transfer per call, recorded.
#include "train/host_reads.h"

#include <torch/torch.h>

#include <atomic>
#include <mutex>

#include "common/error.h"

namespace duet::train {
namespace {

std::mutex reads_mutex;
std::vector<HostRead> reads;
std::atomic<int64_t> current_step{-1};
std::atomic<bool> recording{false};

}  // namespace

std::vector<double> read_to_host(const std::vector<torch::Tensor>& tensors, const char* what) {
  if (recording) {
    std::lock_guard<std::mutex> lock(reads_mutex);
    reads.push_back({current_step.load(), what});
  }
  if (tensors.empty()) {
    return {};
  }
  std::vector<torch::Tensor> flat;
  for (const torch::Tensor& t : tensors) {
    DUET_CHECK(t.defined() && t.numel() == 1, "read_to_host({}): needs one-element tensors", what);
    flat.push_back(t.detach().reshape({1}).to(tensors.front().device(), torch::kFloat64));
  }
  const torch::Tensor host = torch::cat(flat).to(torch::kCPU);  // the one synchronisation
  const double* values = host.data_ptr<double>();
  return std::vector<double>(values, values + host.numel());
}

void set_host_read_step(int64_t step) { current_step = step; }

std::vector<HostRead> recorded_host_reads() {
  std::lock_guard<std::mutex> lock(reads_mutex);
  return reads;
}

void clear_recorded_host_reads() {
  std::lock_guard<std::mutex> lock(reads_mutex);
  reads.clear();
  recording = true;
}

}  // namespace duet::train
