// Append-only metrics file (see metrics_file.h).
#include "train/metrics_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "common/error.h"

namespace duet::train {

MetricsFile::MetricsFile(std::string path, Mode mode) : path_(std::move(path)) {
  const std::filesystem::path parent = std::filesystem::path(path_).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    DUET_CHECK(!ec, "cannot create directory '{}' for '{}': {}", parent.string(), path_,
               ec.message());
  }
  const int flags =
      O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (mode == Mode::kCreateNew ? O_EXCL : 0);
  fd_ = ::open(path_.c_str(), flags, 0644);
  DUET_CHECK(fd_ >= 0, "cannot open '{}' for writing: {}", path_, std::strerror(errno));
}

MetricsFile::~MetricsFile() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

void MetricsFile::append(std::string_view record) {
  const char* data = record.data();
  size_t left = record.size();
  // A regular file takes the whole record in one call; the loop only covers signals and
  // partial writes on a nearly full disk.
  while (left > 0) {
    const ssize_t written = ::write(fd_, data, left);
    if (written < 0 && errno == EINTR) {
      continue;
    }
    DUET_CHECK(written > 0, "cannot write to '{}': {}", path_,
               written < 0 ? std::strerror(errno) : "no progress");
    data += written;
    left -= static_cast<size_t>(written);
  }
}

}  // namespace duet::train
