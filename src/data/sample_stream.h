#pragma once
// The ordered stream of raw samples one rank reads in one epoch. Everything here is a pure
// function of (sources, seed, epoch, rank, world size), never of timing, so the loader's
// batches are reproducible and a position can be restored by replaying the stream.
//   1. Shard order: the shard list, shuffled with (seed, epoch) when shuffling (identically on
//      every rank).
//   2. Partition: by shard (rank r reads shards r, r + W, r + 2W, ... of that order) when there
//      are at least as many shards as ranks, otherwise by sample (every rank reads every shard
//      and keeps the samples whose index in the epoch is r mod W).
//   3. Shuffle buffer: samples pass through a buffer of `shuffle_buffer` samples; each output is
//      a uniformly drawn element of the buffer (RNG seeded with seed, epoch, rank).
//   4. Repeat (optional): at the end of the rank's part the stream starts it again, so ranks
//      with fewer samples can fill the batches every rank must produce.
// Torch-free.
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "data/rng.h"
#include "data/sample.h"
#include "data/source_set.h"

namespace duet::data {

class TarShardReader;

struct StreamPlan {
  uint64_t seed = 0;
  int64_t epoch = 0;
  int rank = 0;
  int world_size = 1;
  bool by_shard = true;
  bool shuffle = false;
  int64_t shuffle_buffer = 0;  // 0 or 1: no sample shuffling
  bool repeat = false;
};

// Indices into SourceSet::shards in this epoch's order (before partitioning).
std::vector<size_t> epoch_shard_order(size_t num_shards, const StreamPlan& plan);

// Raw samples each rank reads in this epoch (one pass), given per-shard counts.
std::vector<int64_t> rank_sample_counts(const std::vector<int64_t>& shard_counts,
                                        const StreamPlan& plan);

class SampleStream {
 public:
  SampleStream(std::shared_ptr<const SourceSet> sources, const StreamPlan& plan);
  ~SampleStream();
  SampleStream(const SampleStream&) = delete;
  SampleStream& operator=(const SampleStream&) = delete;

  // The next sample of this rank's stream; nullopt at its end (never while repeating, unless a
  // whole pass had no samples at all).
  std::optional<RawSample> next();

 private:
  bool read_unshuffled(RawSample& out);   // this rank's samples in shard order
  bool read_from_shards(RawSample& out);  // every sample of the ordered shards

  std::shared_ptr<const SourceSet> sources_;
  StreamPlan plan_;
  std::vector<size_t> shards_;  // the shards this stream reads, in order
  size_t shard_pos_ = 0;
  std::unique_ptr<TarShardReader> tar_;
  int64_t csv_row_ = -1;      // next row of the current CSV shard, -1 before opening it
  int64_t epoch_index_ = 0;   // samples read so far in this pass (for by-sample partition)
  int64_t pass_samples_ = 0;  // samples this rank got in the current pass
  int64_t pass_size_ = 0;     // samples per pass, once the first pass has ended
  std::vector<RawSample> buffer_;
  bool exhausted_ = false;
  Rng rng_;
};

}  // namespace duet::data
