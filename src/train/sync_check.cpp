// The host synchronisation check (see sync_check.h). c10/cuda's header needs the CUDA toolkit's
// headers, so the check is compiled only into CUDA builds (DUET_CUDA).
#include "train/sync_check.h"

#include "common/error.h"
#include "duet/build_info.h"

#if DUET_CUDA
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace duet::train {

bool host_sync_check_available() { return DUET_CUDA != 0; }

HostSyncCheck::HostSyncCheck(bool enabled) : enabled_(enabled) {
  if (!enabled_) {
    return;
  }
#if DUET_CUDA
  auto& state = c10::cuda::warning_state();
  saved_mode_ = static_cast<int>(state.get_sync_debug_mode());
  state.set_sync_debug_mode(c10::cuda::SyncDebugMode::L_ERROR);
#else
  fail("checking for host synchronisations needs a duet built with the CUDA toolkit (DUET_CUDA)");
#endif
}

HostSyncCheck::~HostSyncCheck() {
#if DUET_CUDA
  if (enabled_) {
    c10::cuda::warning_state().set_sync_debug_mode(
        static_cast<c10::cuda::SyncDebugMode>(saved_mode_));
  }
#endif
}

}  // namespace duet::train
