// Tar shard writing (see tar_writer.h).
#include "data/tar_writer.h"

#include <archive.h>
#include <archive_entry.h>

#include <cstdio>
#include <memory>

#include "common/error.h"

namespace duet::data {

TarWriter::TarWriter(std::string path) : path_(std::move(path)), tmp_path_(path_ + ".tmp") {
  archive_ = archive_write_new();
  archive_write_set_format_pax_restricted(archive_);
  if (archive_write_open_filename(archive_, tmp_path_.c_str()) != ARCHIVE_OK) {
    const std::string message = archive_error_string(archive_);
    archive_write_free(archive_);
    archive_ = nullptr;
    fail("cannot write tar shard '{}': {}", tmp_path_, message);
  }
}

TarWriter::~TarWriter() {
  if (archive_ != nullptr) {
    archive_write_free(archive_);
    std::remove(tmp_path_.c_str());
  }
}

void TarWriter::add(const std::string& name, const std::string& data) {
  DUET_CHECK(archive_ != nullptr, "tar shard '{}' is already closed", path_);
  std::unique_ptr<archive_entry, void (*)(archive_entry*)> entry(archive_entry_new(),
                                                                 archive_entry_free);
  archive_entry_set_pathname(entry.get(), name.c_str());
  archive_entry_set_filetype(entry.get(), AE_IFREG);
  archive_entry_set_perm(entry.get(), 0644);
  archive_entry_set_size(entry.get(), static_cast<la_int64_t>(data.size()));
  archive_entry_set_mtime(entry.get(), 0, 0);
  DUET_CHECK(archive_write_header(archive_, entry.get()) == ARCHIVE_OK,
             "writing member '{}' of '{}': {}", name, tmp_path_, archive_error_string(archive_));
  if (!data.empty()) {
    DUET_CHECK(archive_write_data(archive_, data.data(), data.size()) ==
                   static_cast<la_ssize_t>(data.size()),
               "writing member '{}' of '{}': {}", name, tmp_path_, archive_error_string(archive_));
  }
}

void TarWriter::close() {
  DUET_CHECK(archive_ != nullptr, "tar shard '{}' is already closed", path_);
  const int status = archive_write_close(archive_);
  const std::string message = status == ARCHIVE_OK ? "" : archive_error_string(archive_);
  archive_write_free(archive_);
  archive_ = nullptr;
  if (status != ARCHIVE_OK) {
    std::remove(tmp_path_.c_str());
    fail("finishing tar shard '{}': {}", tmp_path_, message);
  }
  DUET_CHECK(std::rename(tmp_path_.c_str(), path_.c_str()) == 0, "cannot rename '{}' to '{}'",
             tmp_path_, path_);
}

}  // namespace duet::data
