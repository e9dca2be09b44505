#pragma once
// Evaluation split across ranks: each rank embeds its share of the evaluation data (the loader's
// per-rank part) and of the texts, and the rows are gathered so that every rank holds all of
// them and computes the same full result. The metrics count ranks, so they do not depend on the
// order in which the gathered rows arrive; a one-process run gives the same numbers.
//
// The all_gather function is the caller's (the trainer's communicator): it takes a tensor of
// the same shape and dtype on every rank ([k, ...], float32 or int64, on the CPU) and returns
// [world_size * k, ...] in rank order. Uneven shares are padded to the largest one here and
// trimmed after the gather.
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

namespace duet::eval {

struct EvalShard {
  int rank = 0;
  int world_size = 1;
  std::function<torch::Tensor(const torch::Tensor&)> all_gather;

  bool distributed() const { return world_size > 1; }
};

// Every rank's `local` rows [k_r, ...] (k_r may differ, trailing shape and dtype may not), in
// rank order: [sum k_r, ...]. Without several ranks, `local` itself.
torch::Tensor gather_rows(const EvalShard& shard, const torch::Tensor& local);

// Every rank's strings, in rank order.
std::vector<std::string> gather_strings(const EvalShard& shard,
                                        const std::vector<std::string>& local);

// This rank's contiguous part [begin, end) of `count` items (the first count % world_size ranks
// get one more), so that gathering the parts in rank order restores the item order.
std::pair<int64_t, int64_t> shard_range(const EvalShard& shard, int64_t count);

}  // namespace duet::eval
