#pragma once
// duet's one error type for failures a user can act on (bad config, files, shapes, data).
// The kind decides the process exit code in `duet`: usage and config errors exit 2,
// everything else 1. Internal invariants use assert, not this type.
#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace duet {

enum class ErrorKind {
  kUsage,    // bad command line
  kConfig,   // bad configuration (file, include, --set, validation)
  kRuntime,  // bad data, files, checkpoints, shapes, or a failing operation
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }
  int exit_code() const { return kind_ == ErrorKind::kRuntime ? 1 : 2; }

 private:
  ErrorKind kind_;
};

template <typename... Args>
[[noreturn]] void fail(ErrorKind kind, fmt::format_string<Args...> format, Args&&... args) {
  throw Error(kind, fmt::format(format, std::forward<Args>(args)...));
}

// Runtime error (exit 1) with a formatted message.
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(ErrorKind::kRuntime, fmt::format(format, std::forward<Args>(args)...));
}

// Throws a runtime Error with the formatted message unless `condition` holds.
#define DUET_CHECK(condition, ...) \
  do {                             \
    if (!(condition)) {            \
      ::duet::fail(__VA_ARGS__);   \
    }                              \
  } while (false)

}  // namespace duet
