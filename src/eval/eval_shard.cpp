// Gathering evaluation rows across ranks (see eval_shard.h): a row-count exchange, padding to
// the largest share, one all_gather, and trimming each rank's padding away.
#include "eval/eval_shard.h"

#include <cstring>

#include <torch/torch.h>

#include "common/error.h"

namespace duet::eval {

torch::Tensor gather_rows(const EvalShard& shard, const torch::Tensor& local) {
  if (!shard.distributed()) {
    return local;
  }
  DUET_CHECK(static_cast<bool>(shard.all_gather),
             "evaluation across {} ranks needs an all_gather function", shard.world_size);
  const torch::Tensor rows = local.cpu().contiguous();
  const torch::Tensor counts =
      shard.all_gather(torch::full({1}, rows.size(0), torch::kInt64)).to(torch::kInt64);
  DUET_CHECK(counts.numel() == shard.world_size, "all_gather returned {} row counts for {} ranks",
             counts.numel(), shard.world_size);
  const int64_t most = counts.max().item<int64_t>();
  std::vector<int64_t> padded_shape = rows.sizes().vec();
  padded_shape[0] = most;
  torch::Tensor padded = torch::zeros(padded_shape, rows.options());
  padded.slice(0, 0, rows.size(0)).copy_(rows);
  const torch::Tensor all = shard.all_gather(padded);  // [world * most, ...]
  std::vector<torch::Tensor> parts;
  for (int r = 0; r < shard.world_size; ++r) {
    const int64_t begin = r * most;
    parts.push_back(all.slice(0, begin, begin + counts[r].item<int64_t>()));
  }
  return torch::cat(parts);
}

std::vector<std::string> gather_strings(const EvalShard& shard,
                                        const std::vector<std::string>& local) {
  if (!shard.distributed()) {
    return local;
  }
  // Lengths as one int64 tensor, bytes packed 8 to an int64 (the gather handles int64).
  std::vector<int64_t> lengths;
  std::string bytes;
  for (const auto& s : local) {
    lengths.push_back(static_cast<int64_t>(s.size()));
    bytes += s;
  }
  bytes.resize((bytes.size() + 7) / 8 * 8, '\0');
  torch::Tensor packed = torch::empty({static_cast<int64_t>(bytes.size() / 8)}, torch::kInt64);
  std::memcpy(packed.data_ptr<int64_t>(), bytes.data(), bytes.size());
  const torch::Tensor all_lengths =
      gather_rows(shard, torch::tensor(lengths, torch::kInt64)).contiguous();
  const torch::Tensor all_packed = gather_rows(shard, packed).contiguous();
  const torch::Tensor counts =
      gather_rows(shard, torch::full({1}, static_cast<int64_t>(local.size()), torch::kInt64));
  std::vector<std::string> out;
  const auto* base = reinterpret_cast<const char*>(all_packed.data_ptr<int64_t>());
  const int64_t* length_of = all_lengths.data_ptr<int64_t>();
  // Each rank's bytes start at a multiple of 8 (its strings' bytes, padded to whole words).
  int64_t offset = 0;
  int64_t string_index = 0;
  for (int r = 0; r < shard.world_size; ++r) {
    for (int64_t i = 0; i < counts[r].item<int64_t>(); ++i) {
      const int64_t length = length_of[string_index++];
      out.emplace_back(base + offset, static_cast<size_t>(length));
      offset += length;
    }
    offset = (offset + 7) / 8 * 8;
  }
  return out;
}

std::pair<int64_t, int64_t> shard_range(const EvalShard& shard, int64_t count) {
  const int64_t world = std::max(1, shard.world_size);
  const int64_t rank = shard.rank;
  const int64_t base = count / world;
  const int64_t extra = count % world;
  const int64_t begin = rank * base + std::min(rank, extra);
  return {begin, begin + base + (rank < extra ? 1 : 0)};
}

}  // namespace duet::eval
