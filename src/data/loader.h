#pragma once
// The data loader: sources -> raw sample stream -> worker threads (read, decode, transform,
// tokenise) -> in-order reassembly -> batches of contiguous tensors, prefetched in a bounded
// queue.
//
// Invariants:
//  - Deterministic: batch contents depend only on (sources, config, seed, epoch, rank,
//    world size, batch size), never on thread timing. The stream order is a pure function
//    (sample_stream.h); sample i of an epoch is transformed with an RNG seeded from
//    (seed, epoch, rank, i); results are reassembled in stream order. workers = 0 gives the
//    same batches on the calling thread.
//  - Bounded: at most batch_size + 4 * workers samples are in flight and `prefetch` batches
//    wait in the queue.
//  - Distributed: ranks read disjoint parts (by shard when there are at least world_size
//    shards, by sample otherwise). With world_size > 1 every rank produces the same number of
//    training batches per epoch (a rank that runs short restarts its part), and a rank that
//    would get no sample (or less than one batch in training) fails at construction.
//  - Resumable: state() is the position after the last batch returned, as JSON; restore() on a
//    loader built the same way makes the next batch the one that would have followed.
//  - Bad samples are skipped and counted (stats().skipped); an epoch in which a source yields
//    no valid sample, or that yields no batch at all, is a duet::Error. With world_size > 1 a
//    rank judges only its own part: in training, a part without any valid sample is an error
//    (found once a whole pass of it was skipped); a part that holds only bad samples of one
//    source is not, since other ranks may hold that source's valid ones.
#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"

namespace duet::text {
class Tokenizer;
}

namespace duet::data {

struct Batch {
  torch::Tensor images;  // [B, 3, S, S] float32, normalised
  torch::Tensor tokens;  // [B, L] int64; undefined when the loader has no tokenizer
  torch::Tensor labels;  // [B] int64 class indices (KEY.cls or an integer caption), -1 if none
  std::vector<std::string> captions;  // [B], trimmed
  std::vector<std::string> keys;      // [B], where each sample came from ("shard.tar:KEY")

  int64_t size() const { return images.defined() ? images.size(0) : 0; }
};

enum class LoaderMode {
  kTrain,  // shuffled, random resized crop (+ flips), last partial batch dropped
  kEval,   // source order, resize + centre crop, last partial batch kept
};

struct LoaderOptions {
  std::vector<std::string> sources;  // CSV/TSV files, tar shards, brace patterns, directories
  LoaderMode mode = LoaderMode::kTrain;
  int64_t batch_size = 256;                          // per rank
  int64_t image_size = 224;                          // model.vision.image_size
  int64_t context_length = 77;                       // model.text.context_length
  std::shared_ptr<const text::Tokenizer> tokenizer;  // null: batches carry no tokens
  uint64_t seed = 0;
  int rank = 0;
  int world_size = 1;
  bool require_captions = true;  // skip samples without a non-empty caption
  bool require_labels = false;   // skip samples without a class index (zero-shot sets)
  // Ranks sharing this machine's cores (distributed::LaunchInfo::local_world_size); data.workers
  // -1 gives each of them its share.
  int ranks_on_node = 1;
  // Allocate batch tensors in pinned (page-locked) host memory, so that copies to a CUDA device
  // can be asynchronous (training on a GPU sets it; needs a CUDA device at run time).
  bool pin_memory = false;
  // Training only: decode a JPEG at a reduced DCT scale (M/8) when the crop still gets at
  // least image_size pixels per side from it. Much faster on large images.
  bool jpeg_dct_scaling = true;
};

struct LoaderStats {
  int64_t samples = 0;  // valid samples handed out in batches
  int64_t batches = 0;
  double seconds = 0;  // since the first next()
  double samples_per_second = 0;
  int64_t skipped = 0;
  std::map<std::string, int64_t> skipped_by_reason;  // "corrupt_image" -> 3, ...
};

// The decoding threads data.workers asks for: itself when >= 0; for -1, the CPU cores this
// process may run on (its affinity mask) divided among `ranks_on_node`, at least 1, at most 32.
int64_t resolve_workers(int64_t requested, int ranks_on_node);
// The same with `cores` given (the testable part).
int64_t resolve_workers(int64_t requested, int ranks_on_node, int64_t cores);

class Loader {
 public:
  // Resolves the sources (missing paths, bad patterns: duet::Error) and, with world_size > 1,
  // counts samples per shard to split the work evenly. Reads no image yet.
  Loader(const config::DataConfig& data, LoaderOptions options);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // The next batch of the current epoch, or nullopt when the epoch is over; the call after a
  // nullopt starts the next epoch.
  std::optional<Batch> next();

  int64_t epoch() const;
  int64_t batches_in_epoch() const;  // batches returned so far in the current epoch
  // Batches every rank produces per training epoch when world_size > 1; nullopt otherwise.
  std::optional<int64_t> epoch_batches() const;

  // The position after the last returned batch, as a JSON object; restore() accepts it on a
  // loader with the same sources, seed, batch size, rank and world size.
  std::string state() const;
  void restore(const std::string& state);

  LoaderStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace duet::data
