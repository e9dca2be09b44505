#include "train/checkpoint_store.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "common/logging.h"

namespace fs = std::filesystem;

namespace duet::train {
namespace {

constexpr const char* kManifest = "manifest.json";
constexpr const char* kPrefix = "step-";
constexpr int kManifestVersion = 1;

std::string step_name(int64_t step) { return fmt::format("{}{:08d}", kPrefix, step); }

// The step of a "step-NNNNNNNN" directory name, or -1.
int64_t parse_step(const std::string& name) {
  if (name.rfind(kPrefix, 0) != 0 || name.size() <= std::strlen(kPrefix)) {
    return -1;
  }
  const std::string digits = name.substr(std::strlen(kPrefix));
  if (!std::all_of(digits.begin(), digits.end(), [](unsigned char c) { return std::isdigit(c); })) {
    return -1;
  }
  return std::stoll(digits);
}

void fsync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) {
    fail("cannot open '{}' to sync it: {}", path, std::strerror(errno));
  }
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) {
    fail("cannot sync '{}' to disk: {}", path, std::strerror(err));
  }
}

// Size and CRC-32 of a file, streamed.
std::pair<uint64_t, uint32_t> size_and_crc(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    fail("cannot read '{}': {}", path, std::strerror(errno));
  }
  std::vector<char> buffer(1 << 20);
  uLong crc = crc32(0L, Z_NULL, 0);
  uint64_t size = 0;
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const std::streamsize n = in.gcount();
    if (n > 0) {
      crc = crc32(crc, reinterpret_cast<const Bytef*>(buffer.data()), static_cast<uInt>(n));
      size += static_cast<uint64_t>(n);
    }
  }
  return {size, static_cast<uint32_t>(crc)};
}

}  // namespace

CheckpointStore::CheckpointStore(std::string dir, int64_t keep_last)
    : dir_(std::move(dir)), keep_last_(keep_last) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) {
    fail("cannot create checkpoint directory '{}': {}", dir_, ec.message());
  }
  // Temporary directories left by an interrupted save are garbage.
  for (const auto& entry : fs::directory_iterator(dir_)) {
    if (entry.path().filename().string().find(".tmp") != std::string::npos) {
      fs::remove_all(entry.path(), ec);
    }
  }
}

std::string CheckpointStore::save(int64_t step, const nlohmann::json& meta,
                                  const std::function<void(const std::string&)>& write_payload) {
  const fs::path final_path = fs::path(dir_) / step_name(step);
  const fs::path tmp_path =
      fs::path(dir_) / (step_name(step) + ".tmp" + std::to_string(::getpid()));
  std::error_code ec;
  fs::remove_all(tmp_path, ec);
  fs::create_directories(tmp_path, ec);
  if (ec) {
    fail("cannot create '{}': {}", tmp_path.string(), ec.message());
  }
  write_payload(tmp_path.string());

  nlohmann::json files = nlohmann::json::object();
  for (const auto& entry : fs::directory_iterator(tmp_path)) {
    const std::string file = entry.path().string();
    const auto [size, crc] = size_and_crc(file);
    files[entry.path().filename().string()] = {{"size", size}, {"crc32", crc}};
    fsync_path(file, false);
  }
  const nlohmann::json manifest = {
      {"version", kManifestVersion}, {"step", step}, {"files", files}, {"meta", meta}};
  const std::string manifest_path = (tmp_path / kManifest).string();
  {
    std::ofstream out(manifest_path, std::ios::binary);
    out << manifest.dump(2) << "\n";
    out.flush();
    if (!out) {
      fail("cannot write '{}': {}", manifest_path, std::strerror(errno));
    }
  }
  fsync_path(manifest_path, false);
  fsync_path(tmp_path.string(), true);

  // A checkpoint of the same step (a re-run after resuming) is replaced only once the new one
  // is complete.
  fs::path old_path;
  if (fs::exists(final_path)) {
    old_path = fs::path(dir_) / (step_name(step) + ".tmp-old" + std::to_string(::getpid()));
    fs::rename(final_path, old_path, ec);
    if (ec) {
      fail("cannot move aside '{}': {}", final_path.string(), ec.message());
    }
  }
  fs::rename(tmp_path, final_path, ec);
  if (ec) {
    fail("cannot rename '{}' to '{}': {}", tmp_path.string(), final_path.string(), ec.message());
  }
  fsync_path(dir_, true);
  if (!old_path.empty()) {
    fs::remove_all(old_path, ec);
  }
  prune();
  return final_path.string();
}

std::vector<std::string> CheckpointStore::list() const {
  std::vector<std::pair<int64_t, std::string>> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    const int64_t step = parse_step(entry.path().filename().string());
    if (step >= 0 && entry.is_directory()) {
      found.emplace_back(step, entry.path().string());
    }
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> paths;
  for (auto& f : found) {
    paths.push_back(std::move(f.second));
  }
  return paths;
}

void CheckpointStore::prune() const {
  const auto paths = list();
  const int64_t excess = static_cast<int64_t>(paths.size()) - keep_last_;
  for (int64_t i = 0; i < excess; ++i) {
    std::error_code ec;
    fs::remove_all(paths[static_cast<size_t>(i)], ec);
    if (ec) {
      log::get("checkpoint")
          ->warn("could not delete old checkpoint '{}': {}", paths[i], ec.message());
    }
  }
}

std::optional<CheckpointInfo> CheckpointStore::latest_good() const {
  const auto paths = list();
  for (auto it = paths.rbegin(); it != paths.rend(); ++it) {
    try {
      CheckpointInfo info = validate(*it);
      if (it != paths.rbegin()) {
        log::get("checkpoint")->warn("resuming from the newest good checkpoint '{}'", *it);
      }
      return info;
    } catch (const Error& e) {
      log::get("checkpoint")->warn("skipping checkpoint: {}", e.what());
    }
  }
  return std::nullopt;
}

bool CheckpointStore::holds_manifest(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec) && fs::is_regular_file(fs::path(path) / kManifest, ec);
}

CheckpointInfo CheckpointStore::validate(const std::string& path) {
  const std::string manifest_path = (fs::path(path) / kManifest).string();
  std::ifstream in(manifest_path, std::ios::binary);
  if (!in) {
    fail("checkpoint '{}' is incomplete or corrupt: no readable {}", path, kManifest);
  }
  nlohmann::json manifest;
  try {
    manifest = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail("checkpoint '{}' is corrupt: {} does not parse ({})", path, kManifest, e.what());
  }
  try {
    if (manifest.at("version").get<int>() != kManifestVersion) {
      fail("checkpoint '{}' has manifest version {}, this duet reads version {}", path,
           manifest.at("version").dump(), kManifestVersion);
    }
    for (const auto& [name, expected] : manifest.at("files").items()) {
      const std::string file = (fs::path(path) / name).string();
      std::error_code ec;
      if (!fs::is_regular_file(file, ec)) {
        fail("checkpoint '{}' is corrupt: '{}' is missing", path, name);
      }
      const auto [size, crc] = size_and_crc(file);
      if (size != expected.at("size").get<uint64_t>()) {
        fail("checkpoint '{}' is corrupt: '{}' has {} bytes, the manifest says {} (truncated?)",
             path, name, size, expected.at("size").get<uint64_t>());
      }
      if (crc != expected.at("crc32").get<uint32_t>()) {
        fail("checkpoint '{}' is corrupt: '{}' fails its CRC-32 check", path, name);
      }
    }
    return CheckpointInfo{path, manifest.at("step").get<int64_t>(), manifest.at("meta")};
  } catch (const nlohmann::json::exception& e) {
    fail("checkpoint '{}' is corrupt: {} lacks a field ({})", path, kManifest, e.what());
  }
}

}  // namespace duet::train
