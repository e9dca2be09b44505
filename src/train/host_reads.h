#pragma once
// Every deliberate device-to-host read of the training loop goes through read_to_host(). On a
// GPU such a read waits for the device to finish all queued work, so where the reads happen
// decides whether the GPU is ever left idle: the loop reads only at logging, evaluation and
// checkpoint steps, and everything else in a step stays on the device. Each read is recorded
// with the loop's current step, so tests can prove that (tests/train/test_host_reads.cpp); on a
// GPU, CUDA's sync debug mode proves it for every read, duet's or not
// (tests/train/test_train_cuda.cpp).
#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

namespace duet::train {

// The values of `tensors` (each one element, any dtype and device) as doubles, in one transfer:
// one synchronisation however many values. `what` names the read in the record.
std::vector<double> read_to_host(const std::vector<torch::Tensor>& tensors, const char* what);

struct HostRead {
  int64_t step;      // the loop's step when it happened (-1 outside the loop)
  std::string what;  // read_to_host's `what`
};

// The loop's current step, stored with each read; -1 outside the loop.
void set_host_read_step(int64_t step);

// The reads since the last clear (process-wide; reads from any thread). Recording starts with the
// first clear, so a process that never asks (a training run) keeps no record.
std::vector<HostRead> recorded_host_reads();
void clear_recorded_host_reads();

}  // namespace duet::train
