#pragma once
// The checkpoint directory of a run: atomic saves, integrity checks, keep-last-K, and finding
// the newest good checkpoint. Torch-free: checkpoint.h writes the payload files (model,
// optimiser, per-rank state) into the directory it is handed; this class makes them a
// checkpoint.
//
// Layout: RUN_DIR/checkpoints/step-00000100/{<payload files>, manifest.json}
// Invariants:
//  - A checkpoint directory only ever appears complete: payload and manifest are written to a
//    temporary sibling, fsynced, and renamed into place (then the parent is fsynced).
//  - manifest.json lists every payload file with its size and CRC-32, so truncation or
//    corruption of any file is detected before LibTorch reads it.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace duet::train {

struct CheckpointInfo {
  std::string path;  // the checkpoint directory
  int64_t step = 0;
  nlohmann::json meta;  // what the trainer stored with it (loader position, config, ...)
};

class CheckpointStore {
 public:
  // `dir` holds the step-* directories; it is created when missing.
  CheckpointStore(std::string dir, int64_t keep_last);

  // Writes a checkpoint for `step`: `write_payload(tmp_dir)` writes the payload files into the
  // temporary directory, then the manifest (with `meta`) is added and the directory renamed into
  // place. Older checkpoints beyond keep_last are deleted afterwards. Returns the final path.
  std::string save(int64_t step, const nlohmann::json& meta,
                   const std::function<void(const std::string& tmp_dir)>& write_payload);

  // Complete checkpoints in this store, oldest first (not validated).
  std::vector<std::string> list() const;

  // The newest checkpoint that validates; each newer corrupt one is logged as skipped.
  std::optional<CheckpointInfo> latest_good() const;

  // True when `path` is a directory holding a manifest (a checkpoint, valid or not).
  static bool holds_manifest(const std::string& path);

  // Reads and checks a checkpoint directory (manifest, sizes, CRCs). Throws a runtime Error
  // naming the checkpoint and what is wrong.
  static CheckpointInfo validate(const std::string& path);

  const std::string& dir() const { return dir_; }

 private:
  void prune() const;

  std::string dir_;
  int64_t keep_last_;
};

}  // namespace duet::train
