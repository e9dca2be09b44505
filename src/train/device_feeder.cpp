// The device feeder (see device_feeder.h). Streams and events go through c10's device-generic
// interfaces (c10::Stream, c10::Event, VirtualGuardImpl), so this file needs no CUDA header and
// compiles in every build; on the CPU none of them is used.
#include "train/device_feeder.h"

#include <c10/core/Event.h>
#include <c10/core/Stream.h>
#include <c10/core/StreamGuard.h>
#include <c10/core/impl/VirtualGuardImpl.h>
#include <torch/torch.h>

#include <chrono>

#include "common/error.h"

namespace duet::train {

struct DeviceFeeder::CopyStream {
  c10::Stream stream;
};

struct DeviceFeeder::Prepared {
  std::vector<data::Batch> batches;    // images and tokens on the device
  std::unique_ptr<c10::Event> copied;  // recorded on the copy stream after the copies; GPU only
  std::string state_after;             // loader position after these batches
  int64_t epoch_after = 0;
};

DeviceFeeder::DeviceFeeder(data::Loader& loader, const torch::Device& device, int64_t micro_batches,
                           std::function<void(const data::Batch&)> check)
    : loader_(loader),
      device_(device),
      micro_batches_(micro_batches),
      check_(std::move(check)),
      consumed_state_(loader.state()),
      consumed_epoch_(loader.epoch()) {
  DUET_CHECK(micro_batches_ >= 1, "DeviceFeeder needs at least one micro-batch per step");
  if (!device_.is_cpu()) {
    const c10::impl::VirtualGuardImpl impl(device_.type());
    copy_stream_ =
        std::make_unique<CopyStream>(CopyStream{impl.getStreamFromGlobalPool(device_, false)});
  }
}

DeviceFeeder::~DeviceFeeder() = default;

std::unique_ptr<DeviceFeeder::Prepared> DeviceFeeder::draw() {
  auto prepared = std::make_unique<Prepared>();
  for (int64_t k = 0; k < micro_batches_; ++k) {
    const auto start = std::chrono::steady_clock::now();
    std::optional<data::Batch> batch = loader_.next();
    if (!batch) {  // end of an epoch: the next call starts the following one
      batch = loader_.next();
    }
    wait_seconds_ +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    DUET_CHECK(batch.has_value(), "data.train yields no batch");
    if (check_) {
      check_(*batch);
    }
    prepared->batches.push_back(std::move(*batch));
  }
  prepared->state_after = loader_.state();
  prepared->epoch_after = loader_.epoch();
  if (copy_stream_) {
    // Copies from pinned memory with non_blocking return at once; on the side stream they
    // overlap whatever the compute stream is running.
    const c10::StreamGuard on_copy_stream(copy_stream_->stream);
    for (data::Batch& b : prepared->batches) {
      b.images = b.images.to(device_, /*non_blocking=*/true);
      if (b.tokens.defined()) {
        b.tokens = b.tokens.to(device_, /*non_blocking=*/true);
      }
    }
    prepared->copied = std::make_unique<c10::Event>(device_.type());
    prepared->copied->record(copy_stream_->stream);
  }
  return prepared;
}

std::vector<data::Batch> DeviceFeeder::take() {
  if (!next_) {
    next_ = draw();
  }
  std::unique_ptr<Prepared> prepared = std::move(next_);
  if (prepared->copied) {
    const c10::impl::VirtualGuardImpl impl(device_.type());
    const c10::Stream compute = impl.getStream(device_);
    prepared->copied->block(compute);  // the compute stream waits on the device, not the host
    for (data::Batch& b : prepared->batches) {
      b.images.record_stream(compute);
      if (b.tokens.defined()) {
        b.tokens.record_stream(compute);
      }
    }
  }
  consumed_state_ = std::move(prepared->state_after);
  consumed_epoch_ = prepared->epoch_after;
  return std::move(prepared->batches);
}

void DeviceFeeder::prepare_next() {
  if (!next_) {
    next_ = draw();
  }
}

double DeviceFeeder::take_wait_seconds() {
  const double seconds = wait_seconds_;
  wait_seconds_ = 0.0;
  return seconds;
}

std::string DeviceFeeder::loader_state() const { return consumed_state_; }

int64_t DeviceFeeder::epoch() const { return consumed_epoch_; }

}  // namespace duet::train
