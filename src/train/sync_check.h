#pragma once
// Proof that a stretch of code never makes the host wait for the GPU: while a HostSyncCheck is
// enabled, CUDA's sync debug mode is set to "error" (c10::cuda::warning_state), so any call
// that synchronises the host with the device - reading a value (.item(), a device-to-host copy),
// a blocking copy from pageable memory, a stream or device synchronise - throws instead of
// waiting. The trainer enables it around each step's work when asked (TrainOptions::
// check_host_syncs, `duet train --check-syncs`), leaving it off where it reads on purpose
// (logging, evaluation and checkpoint steps). CUDA builds only; on the CPU there is nothing to
// wait for, and host_reads.h counts duet's own reads instead.
namespace duet::train {

// True when this build can check (it was compiled with the CUDA toolkit).
bool host_sync_check_available();

class HostSyncCheck {
 public:
  // Enables the check for this object's lifetime when `enabled`; a runtime Error when enabled in
  // a build without CUDA.
  explicit HostSyncCheck(bool enabled);
  ~HostSyncCheck();
  HostSyncCheck(const HostSyncCheck&) = delete;
  HostSyncCheck& operator=(const HostSyncCheck&) = delete;

 private:
  bool enabled_;
  int saved_mode_ = 0;
};

}  // namespace duet::train
