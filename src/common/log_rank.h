#pragma once
// Changing the rank shown in log lines after start-up (the trainer learns its rank from the
// launcher's variables). Kept apart from logging.h so that few files depend on it.
namespace duet::log {

// Sets the rank shown in every line (and so whether info lines are shown), keeping the level.
void set_rank(int rank);

}  // namespace duet::log
