#include "distributed/config_check.h"

#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "config/key_values.h"

namespace duet::distributed {
namespace {

constexpr size_t kMaxListed = 12;  // differing keys spelled out before "and N more"

}  // namespace

void check_same_config(Communicator& communicator, const config::Config& config) {
  if (communicator.world_size() == 1) {
    return;
  }
  nlohmann::json mine = nlohmann::json::array();
  for (const auto& [key, value] : config::key_values(config)) {
    mine.push_back({key, value});
  }
  const std::vector<std::string> texts = communicator.all_gather_text(mine.dump());

  // key -> value on each rank ("" marks a key a rank does not have: a different duet build).
  std::vector<std::string> order;
  std::map<std::string, std::vector<std::string>> values;
  const auto ranks = static_cast<size_t>(communicator.world_size());
  for (size_t r = 0; r < ranks; ++r) {
    nlohmann::json theirs;
    try {
      theirs = nlohmann::json::parse(texts[r]);
    } catch (const nlohmann::json::exception& e) {
      fail("check_same_config: rank {} sent an unreadable config ({})", r, e.what());
    }
    for (const auto& pair : theirs) {
      const std::string key = pair.at(0).get<std::string>();
      auto [it, added] = values.try_emplace(key, std::vector<std::string>(ranks, "(missing)"));
      if (added) {
        order.push_back(key);
      }
      it->second[r] = pair.at(1).get<std::string>();
    }
  }

  std::vector<std::string> differing;
  for (const auto& key : order) {
    const auto& per_rank = values[key];
    bool same = true;
    for (size_t r = 1; r < ranks && same; ++r) {
      same = per_rank[r] == per_rank[0];
    }
    if (same) {
      continue;
    }
    // Group ranks by value: "train.batch_size (64 on ranks 0, 2; 32 on rank 1)".
    std::vector<std::pair<std::string, std::vector<size_t>>> groups;
    for (size_t r = 0; r < ranks; ++r) {
      auto it = std::find_if(groups.begin(), groups.end(),
                             [&](const auto& g) { return g.first == per_rank[r]; });
      if (it == groups.end()) {
        groups.push_back({per_rank[r], {r}});
      } else {
        it->second.push_back(r);
      }
    }
    std::string described;
    for (size_t g = 0; g < groups.size(); ++g) {
      described +=
          fmt::format("{}{} on rank{} {}", g ? "; " : "", groups[g].first,
                      groups[g].second.size() > 1 ? "s" : "", fmt::join(groups[g].second, ", "));
    }
    differing.push_back(fmt::format("{} ({})", key, described));
  }
  if (differing.empty()) {
    return;
  }
  std::string listed;
  for (size_t i = 0; i < differing.size() && i < kMaxListed; ++i) {
    listed += "\n  " + differing[i];
  }
  if (differing.size() > kMaxListed) {
    listed += fmt::format("\n  and {} more", differing.size() - kMaxListed);
  }
  fail(ErrorKind::kConfig,
       "ranks were started with different configs; {} key{} differ:{}\nstart every rank with the "
       "same config file and --set overrides",
       differing.size(), differing.size() == 1 ? "" : "s", listed);
}

}  // namespace duet::distributed
