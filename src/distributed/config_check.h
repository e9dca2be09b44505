#pragma once
// Ranks that train with different settings produce garbage silently (different models, losses,
// learning rates): refuse to start instead. Every rank sends its resolved config (as flat key =
// value pairs, config/key_values.h) to every other; when any differ, every rank throws the same
// config Error naming each differing key with the ranks' values.
#include "config/config.h"
#include "distributed/communicator.h"

namespace duet::distributed {

void check_same_config(Communicator& communicator, const config::Config& config);

}  // namespace duet::distributed
