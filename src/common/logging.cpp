#include "common/logging.h"
#include "common/log_rank.h"

#include <mutex>

#include <spdlog/sinks/stdout_color_sinks.h>

#include "common/error.h"

namespace duet::log {
namespace {

struct State {
  std::mutex mutex;
  spdlog::sink_ptr sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  spdlog::level::level_enum level = spdlog::level::info;
  bool level_from_command_line = false;
  int rank = 0;
};

State& state() {
  static State s;
  return s;
}

std::string pattern(int rank) {
  return "[%Y-%m-%d %H:%M:%S.%e] [rank " + std::to_string(rank) + "] [%^%l%$] [%n] %v";
}

spdlog::level::level_enum effective_level(const State& s) {
  return s.rank == 0 ? s.level : std::max(s.level, spdlog::level::warn);
}

spdlog::level::level_enum parse_level(const std::string& level) {
  auto parsed = spdlog::level::from_str(level);
  // from_str answers "off" for names it does not know; only accept "off" when asked for.
  if (parsed == spdlog::level::off && level != "off") {
    fail(ErrorKind::kUsage,
         "unknown log level '{}' (expected trace, debug, info, warn, error or off)", level);
  }
  return parsed;
}

// With the state's mutex held.
void apply_level(State& s) {
  spdlog::apply_all([&](const std::shared_ptr<spdlog::logger>& logger) {
    logger->set_level(effective_level(s));
  });
}

}  // namespace

void init(const std::string& level, int rank, bool from_command_line) {
  const auto parsed = parse_level(level);
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.level = parsed;
  s.level_from_command_line = from_command_line;
  s.rank = rank;
  s.sink->set_pattern(pattern(rank));
  apply_level(s);
}

void apply_config_level(const std::string& level) {
  const auto parsed = parse_level(level);
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.level_from_command_line) {
    return;
  }
  s.level = parsed;
  apply_level(s);
}

void set_rank(int rank) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.rank = rank;
  s.sink->set_pattern(pattern(rank));
  apply_level(s);
}

std::shared_ptr<spdlog::logger> get(const std::string& component) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (auto existing = spdlog::get(component)) {
    return existing;
  }
  auto logger = std::make_shared<spdlog::logger>(component, s.sink);
  s.sink->set_pattern(pattern(s.rank));
  logger->set_level(effective_level(s));
  spdlog::register_logger(logger);
  return logger;
}

}  // namespace duet::log
