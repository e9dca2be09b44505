#pragma once
// An append-only file for the metrics writers. Each record goes to the kernel in one write(2)
// call with no user-space buffer, so once append() returns the record survives the process
// being killed (even by SIGKILL); it is not fsynced, so a power loss may still lose the tail.
// A reader therefore sees whole records, except at worst a torn last one after a crash
// mid-write (e.g. a full disk), which readers must tolerate.
#include <string>
#include <string_view>

namespace duet::train {

class MetricsFile {
 public:
  enum class Mode {
    kAppend,     // open an existing file and append to it, or create it
    kCreateNew,  // create the file; an existing one is an error
  };

  // Opens `path`, creating its parent directories when missing. Throws a runtime Error naming
  // the path when it cannot be opened.
  MetricsFile(std::string path, Mode mode);
  ~MetricsFile();
  MetricsFile(const MetricsFile&) = delete;
  MetricsFile& operator=(const MetricsFile&) = delete;

  // Writes `record` at the end of the file. Throws a runtime Error naming the path on failure.
  void append(std::string_view record);

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace duet::train
