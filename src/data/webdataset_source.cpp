// WebDataset shard reading through libarchive (see webdataset_source.h). Members are read one
// ahead: the first member of the next key is kept as `pending_` until the next call.
#include "data/webdataset_source.h"

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <cctype>
#include <charconv>

#include "common/strings.h"

namespace duet::data {
namespace {

constexpr int64_t kMaxMemberBytes = int64_t{1} << 30;
constexpr int kMaxRetries = 1000;  // damaged headers tolerated per shard before giving up

archive* open_archive(const std::string& path, std::string& error) {
  archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  archive_read_support_filter_all(a);
  if (archive_read_open_filename(a, path.c_str(), 1 << 20) != ARCHIVE_OK) {
    error = std::string("cannot open: ") + archive_error_string(a);
    archive_read_free(a);
    return nullptr;
  }
  return a;
}

bool is_image_ext(const std::string& ext) {
  return ext == "jpg" || ext == "jpeg" || ext == "png" || ext == "webp";
}

}  // namespace

std::pair<std::string, std::string> split_member_name(const std::string& path) {
  const size_t slash = path.rfind('/');
  const size_t name_start = slash == std::string::npos ? 0 : slash + 1;
  const size_t dot = path.find('.', name_start);
  if (dot == std::string::npos) {
    return {path, ""};
  }
  std::string ext = path.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return {path.substr(0, dot), ext};
}

TarShardReader::TarShardReader(std::string path, int source)
    : path_(std::move(path)), source_(source) {
  archive_ = open_archive(path_, error_);
  done_ = archive_ == nullptr;
}

TarShardReader::~TarShardReader() {
  if (archive_ != nullptr) {
    archive_read_free(archive_);
  }
}

bool TarShardReader::read_member(Member& out) {
  while (!done_) {
    archive_entry* entry = nullptr;
    const int status = archive_read_next_header(archive_, &entry);
    if (status == ARCHIVE_EOF) {
      done_ = true;
      return false;
    }
    if (status == ARCHIVE_RETRY && ++retries_ <= kMaxRetries) {
      // A damaged header: libarchive resynchronises at the next valid header on the next call.
      // The members in between are lost; next() reports them as one error.
      if (resync_error_.empty()) {
        resync_error_ = std::string("garbled tar header: ") + archive_error_string(archive_);
      }
      continue;
    }
    if (status < ARCHIVE_OK && status != ARCHIVE_WARN) {  // FAILED, FATAL, or endless RETRY
      error_ = std::string("garbled tar: ") + archive_error_string(archive_);
      done_ = true;
      return false;
    }
    if (archive_entry_filetype(entry) != AE_IFREG) {
      continue;
    }
    const char* name = archive_entry_pathname(entry);
    const int64_t size = archive_entry_size(entry);
    if (name == nullptr || size < 0 || size > kMaxMemberBytes) {
      error_ = "garbled tar: bad member header";
      done_ = true;
      return false;
    }
    auto [key, ext] = split_member_name(name);
    if (key.size() >= 2 && key[0] == '.' && key[1] == '/') {
      key.erase(0, 2);
    }
    out.key = std::move(key);
    out.ext = std::move(ext);
    out.data.resize(static_cast<size_t>(size));
    int64_t got = 0;
    while (got < size) {
      const la_ssize_t n =
          archive_read_data(archive_, out.data.data() + got, static_cast<size_t>(size - got));
      if (n <= 0) {
        error_ = std::string("truncated tar member '") + name + "'" +
                 (n < 0 ? std::string(": ") + archive_error_string(archive_) : "");
        done_ = true;
        return false;
      }
      got += n;
    }
    return true;
  }
  return false;
}

void TarShardReader::add(RawSample& sample, Member& member) const {
  if (is_image_ext(member.ext)) {
    if (sample.image.empty()) {
      sample.image = std::move(member.data);
    }
  } else if (member.ext == "txt") {
    sample.caption = std::move(member.data);
  } else if (member.ext == "json") {
    sample.json = std::move(member.data);
  } else if (member.ext == "cls") {
    const std::string text = trim(member.data);
    int64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec == std::errc() && end == text.data() + text.size() && value >= 0) {
      sample.label = value;
    }
  }
}

bool TarShardReader::next(RawSample& out) {
  out = RawSample{};
  out.source = source_;
  auto resync_item = [&] {
    // Damaged headers were skipped before the pending member (or the end): one error item.
    out.where = path_;
    out.problem = SkipReason::kTarError;
    out.problem_detail = std::move(resync_error_);
    resync_error_.clear();
    return true;
  };
  if (!resync_error_.empty()) {
    return resync_item();
  }
  Member member;
  std::string key;
  bool have_any = false;
  if (has_pending_) {
    key = pending_.key;
    add(out, pending_);
    has_pending_ = false;
    have_any = true;
  }
  while (read_member(member)) {
    if (!resync_error_.empty() || (have_any && member.key != key)) {
      pending_ = std::move(member);
      has_pending_ = true;
      break;
    }
    key = member.key;
    have_any = true;
    add(out, member);
  }
  if (!have_any) {
    if (!resync_error_.empty()) {
      return resync_item();
    }
    if (error_.empty() || error_returned_) {
      return false;
    }
    // An archive that fails before any member of a new sample: the error itself is the item.
    error_returned_ = true;
    out.where = path_;
    out.problem = SkipReason::kTarError;
    out.problem_detail = error_;
    return true;
  }
  out.where = path_ + ":" + key;
  if (!has_pending_ && resync_error_.empty() && !error_.empty()) {
    error_returned_ = true;
    out.problem = SkipReason::kTarError;  // this sample may be missing members
    out.problem_detail = error_;
  } else if (out.image.empty()) {
    out.problem = SkipReason::kMissingImage;
    out.problem_detail = "no .jpg/.jpeg/.png/.webp member";
  }
  return true;
}

int64_t count_shard_samples(const std::string& path) {
  std::string error;
  archive* a = open_archive(path, error);
  if (a == nullptr) {
    return 0;
  }
  int64_t count = 0;
  std::string last_key;
  archive_entry* entry = nullptr;
  while (archive_read_next_header(a, &entry) >= ARCHIVE_WARN) {
    if (archive_entry_filetype(entry) != AE_IFREG || archive_entry_pathname(entry) == nullptr) {
      continue;
    }
    auto [key, ext] = split_member_name(archive_entry_pathname(entry));
    if (is_image_ext(ext) && key != last_key) {
      ++count;
      last_key = key;
    }
  }
  archive_read_free(a);
  return count;
}

}  // namespace duet::data
