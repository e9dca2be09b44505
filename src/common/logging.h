#pragma once
// spdlog loggers, one per component, all sharing one sink and one pattern:
//   [2026-11-23 08:00:00.000] [rank 0] [info] [config] message
// Rank 0 logs at the configured level; other ranks only log warnings and errors.
#include <memory>
#include <string>

#include <spdlog/spdlog.h>

namespace duet::log {

// Sets the level ("trace", "debug", "info", "warn", "error", "off") and the rank shown in every
// line. `from_command_line`: the level was asked for explicitly (--log-level), so a config's
// logging.level does not replace it. Throws a usage Error for an unknown level name.
void init(const std::string& level, int rank = 0, bool from_command_line = false);

// Applies a config's logging.level, unless the command line set the level explicitly.
void apply_config_level(const std::string& level);

// The logger for a component; its name is the [tag] on each line.
std::shared_ptr<spdlog::logger> get(const std::string& component);

}  // namespace duet::log
