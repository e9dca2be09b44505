// The per-rank raw sample stream (see sample_stream.h).
#include "data/sample_stream.h"

#include <algorithm>

#include "data/webdataset_source.h"

namespace duet::data {
namespace {

constexpr uint64_t kShardOrderTag = 0x5a4d;
constexpr uint64_t kBufferTag = 0xb0ff;

}  // namespace

std::vector<size_t> epoch_shard_order(size_t num_shards, const StreamPlan& plan) {
  std::vector<size_t> order(num_shards);
  for (size_t i = 0; i < num_shards; ++i) {
    order[i] = i;
  }
  if (plan.shuffle) {
    Rng rng(mix_seed({plan.seed, static_cast<uint64_t>(plan.epoch), kShardOrderTag}));
    for (size_t i = num_shards; i > 1; --i) {  // Fisher-Yates
      std::swap(order[i - 1], order[rng.below(i)]);
    }
  }
  return order;
}

std::vector<int64_t> rank_sample_counts(const std::vector<int64_t>& shard_counts,
                                        const StreamPlan& plan) {
  const auto world = static_cast<size_t>(plan.world_size);
  std::vector<int64_t> per_rank(world, 0);
  if (plan.by_shard) {
    const std::vector<size_t> order = epoch_shard_order(shard_counts.size(), plan);
    for (size_t i = 0; i < order.size(); ++i) {
      per_rank[i % world] += shard_counts[order[i]];
    }
  } else {
    int64_t total = 0;
    for (int64_t c : shard_counts) {
      total += c;
    }
    for (size_t r = 0; r < world; ++r) {
      per_rank[r] = total / plan.world_size + (static_cast<int64_t>(r) < total % plan.world_size);
    }
  }
  return per_rank;
}

SampleStream::SampleStream(std::shared_ptr<const SourceSet> sources, const StreamPlan& plan)
    : sources_(std::move(sources)),
      plan_(plan),
      rng_(mix_seed({plan.seed, static_cast<uint64_t>(plan.epoch), static_cast<uint64_t>(plan.rank),
                     kBufferTag})) {
  const std::vector<size_t> order = epoch_shard_order(sources_->shards.size(), plan_);
  for (size_t i = 0; i < order.size(); ++i) {
    if (!plan_.by_shard ||
        static_cast<int>(i % static_cast<size_t>(plan_.world_size)) == plan_.rank) {
      shards_.push_back(order[i]);
    }
  }
}

SampleStream::~SampleStream() = default;

bool SampleStream::read_from_shards(RawSample& out) {
  while (shard_pos_ < shards_.size()) {
    const Shard& shard = sources_->shards[shards_[shard_pos_]];
    if (shard.is_csv()) {
      if (csv_row_ < 0) {
        csv_row_ = shard.row_begin;
      }
      if (csv_row_ < shard.row_end) {
        const CsvRow& row = (*shard.rows)[static_cast<size_t>(csv_row_++)];
        out = RawSample{};
        out.source = shard.source;
        out.where = shard.path + ":" + std::to_string(row.line);
        if (row.malformed) {
          out.problem = SkipReason::kBadRow;
          out.problem_detail = "too few columns";
        } else {
          out.image_path = row.image_path;
          out.caption = row.caption;
        }
        return true;
      }
    } else {
      if (!tar_) {
        tar_ = std::make_unique<TarShardReader>(shard.path, shard.source);
      }
      if (tar_->next(out)) {
        return true;
      }
    }
    tar_.reset();
    csv_row_ = -1;
    ++shard_pos_;
  }
  return false;
}

bool SampleStream::read_unshuffled(RawSample& out) {
  for (;;) {
    while (read_from_shards(out)) {
      const int64_t index = epoch_index_++;
      if (plan_.by_shard || index % plan_.world_size == plan_.rank) {
        out.pass_index = pass_samples_++;
        out.pass_size = pass_size_;
        return true;
      }
    }
    if (!plan_.repeat || pass_samples_ == 0) {
      return false;
    }
    pass_size_ = pass_samples_;
    shard_pos_ = 0;  // next pass over the same part
    epoch_index_ = 0;
    pass_samples_ = 0;
  }
}

std::optional<RawSample> SampleStream::next() {
  const size_t capacity =
      static_cast<size_t>(std::max<int64_t>(plan_.shuffle ? plan_.shuffle_buffer : 1, 1));
  while (!exhausted_ && buffer_.size() < capacity) {
    RawSample sample;
    if (!read_unshuffled(sample)) {
      exhausted_ = true;
      break;
    }
    buffer_.push_back(std::move(sample));
  }
  if (buffer_.empty()) {
    return std::nullopt;
  }
  const size_t pick = buffer_.size() == 1 ? 0 : static_cast<size_t>(rng_.below(buffer_.size()));
  std::swap(buffer_[pick], buffer_.back());
  RawSample out = std::move(buffer_.back());
  buffer_.pop_back();
  return out;
}

}  // namespace duet::data
