#include "distributed/launch.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>
#include <optional>

#include <fmt/format.h>

#include "common/error.h"
#include "common/strings.h"

extern char** environ;

namespace duet::distributed {
namespace {

std::optional<std::string> lookup(const Environment& env, const std::string& name) {
  auto it = env.find(name);
  if (it == env.end()) {
    return std::nullopt;
  }
  return it->second;
}

// A non-negative decimal integer that fills the whole variable (no sign, spaces or suffix).
int64_t parse_count(const std::string& name, const std::string& value, const std::string& source) {
  int64_t out = 0;
  const char* begin = value.data();
  const char* end = begin + value.size();
  auto [ptr, ec] = std::from_chars(begin, end, out);
  if (value.empty() || ec != std::errc() || ptr != end || out < 0) {
    fail(ErrorKind::kUsage, "{}: {}='{}' is not a non-negative integer", source, name, value);
  }
  return out;
}

int parse_int(const std::string& name, const std::string& value, const std::string& source) {
  const int64_t v = parse_count(name, value, source);
  if (v > std::numeric_limits<int>::max()) {
    fail(ErrorKind::kUsage, "{}: {}='{}' is too large", source, name, value);
  }
  return static_cast<int>(v);
}

int parse_port(const std::string& name, const std::string& value, const std::string& source) {
  const int64_t port = parse_count(name, value, source);
  if (port < 1 || port > 65535) {
    fail(ErrorKind::kUsage, "{}: {}='{}' is not a TCP port (1-65535)", source, name, value);
  }
  return static_cast<int>(port);
}

// A variable the launcher in use must provide; `why` says so in the message.
std::string require(const Environment& env, const std::string& name, const std::string& source,
                    const std::string& why) {
  auto value = lookup(env, name);
  if (!value) {
    fail(ErrorKind::kUsage, "{}: {} is not set ({})", source, name, why);
  }
  return *value;
}

void check_ranks(const LaunchInfo& info, const std::string& rank_var, const std::string& size_var,
                 const std::string& local_var) {
  if (info.world_size < 1) {
    fail(ErrorKind::kUsage, "{}: {}={} must be at least 1", info.launcher, size_var,
         info.world_size);
  }
  if (info.rank >= info.world_size) {
    fail(ErrorKind::kUsage, "{}: {}={} must be less than {}={}", info.launcher, rank_var, info.rank,
         size_var, info.world_size);
  }
  if (info.local_rank >= info.world_size) {
    fail(ErrorKind::kUsage, "{}: {}={} must be less than {}={}", info.launcher, local_var,
         info.local_rank, size_var, info.world_size);
  }
}

// MASTER_ADDR / MASTER_PORT for launchers that do not provide them (Open MPI) or when the
// torchrun-style variables name more than one rank.
void read_master(const Environment& env, LaunchInfo& info, const std::string& why) {
  info.master_addr = require(env, "MASTER_ADDR", info.launcher, why);
  if (info.master_addr.empty()) {
    fail(ErrorKind::kUsage, "{}: MASTER_ADDR is empty ({})", info.launcher, why);
  }
  info.master_port =
      parse_port("MASTER_PORT", require(env, "MASTER_PORT", info.launcher, why), info.launcher);
}

std::optional<LaunchInfo> from_torchrun(const Environment& env) {
  const auto rank = lookup(env, "RANK");
  const auto world = lookup(env, "WORLD_SIZE");
  if (!rank && !world) {
    return std::nullopt;
  }
  LaunchInfo info;
  info.launcher = "torchrun";
  const std::string why = "torchrun-style launch: RANK and WORLD_SIZE go together";
  info.rank = parse_int("RANK", require(env, "RANK", info.launcher, why), info.launcher);
  info.world_size =
      parse_int("WORLD_SIZE", require(env, "WORLD_SIZE", info.launcher, why), info.launcher);
  // LOCAL_RANK only picks the GPU; scripts that start ranks on one node often leave it out.
  const auto local = lookup(env, "LOCAL_RANK");
  info.local_rank = local ? parse_int("LOCAL_RANK", *local, info.launcher) : info.rank;
  if (const auto local_world = lookup(env, "LOCAL_WORLD_SIZE")) {
    info.local_world_size = std::max(1, parse_int("LOCAL_WORLD_SIZE", *local_world, info.launcher));
  }
  check_ranks(info, "RANK", "WORLD_SIZE", "LOCAL_RANK");
  if (info.world_size > 1) {
    read_master(env, info, "needed to find rank 0 when WORLD_SIZE > 1");
  }
  return info;
}

std::optional<LaunchInfo> from_slurm(const Environment& env) {
  const auto procid = lookup(env, "SLURM_PROCID");
  if (!procid) {
    return std::nullopt;
  }
  LaunchInfo info;
  info.launcher = "slurm";
  info.rank = parse_int("SLURM_PROCID", *procid, info.launcher);
  auto ntasks = lookup(env, "SLURM_NTASKS");
  const char* ntasks_name = "SLURM_NTASKS";
  if (!ntasks) {
    ntasks = lookup(env, "SLURM_NPROCS");  // older Slurm
    ntasks_name = "SLURM_NPROCS";
  }
  if (!ntasks) {
    fail(ErrorKind::kUsage,
         "slurm: SLURM_PROCID is set but SLURM_NTASKS is not (start ranks with srun and "
         "--ntasks or --ntasks-per-node)");
  }
  info.world_size = parse_int(ntasks_name, *ntasks, info.launcher);
  const auto local = lookup(env, "SLURM_LOCALID");
  info.local_rank = local ? parse_int("SLURM_LOCALID", *local, info.launcher) : 0;
  check_ranks(info, "SLURM_PROCID", ntasks_name, "SLURM_LOCALID");
  if (info.world_size == 1) {
    return info;
  }
  if (const auto addr = lookup(env, "MASTER_ADDR")) {
    info.master_addr = *addr;
  } else {
    std::optional<std::string> nodes;
    std::string nodes_name;
    for (const char* name : {"SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST", "SLURM_NODELIST"}) {
      if ((nodes = lookup(env, name))) {
        nodes_name = name;
        break;
      }
    }
    if (!nodes) {
      fail(ErrorKind::kUsage,
           "slurm: neither MASTER_ADDR nor SLURM_JOB_NODELIST is set, so rank 0's host is "
           "unknown");
    }
    std::vector<std::string> hosts;
    try {
      hosts = expand_hostlist(*nodes);
    } catch (const Error& e) {
      fail(ErrorKind::kUsage, "slurm: {}='{}': {}", nodes_name, *nodes, e.what());
    }
    info.master_addr = hosts.front();
  }
  if (info.master_addr.empty()) {
    fail(ErrorKind::kUsage, "slurm: MASTER_ADDR is empty");
  }
  if (const auto port = lookup(env, "MASTER_PORT")) {
    info.master_port = parse_port("MASTER_PORT", *port, info.launcher);
  } else if (const auto job = lookup(env, "SLURM_JOB_ID")) {
    info.master_port = slurm_default_port(parse_count("SLURM_JOB_ID", *job, info.launcher));
  } else {
    fail(ErrorKind::kUsage,
         "slurm: neither MASTER_PORT nor SLURM_JOB_ID is set, so the rendezvous port is unknown");
  }
  return info;
}

std::optional<LaunchInfo> from_openmpi(const Environment& env) {
  const auto rank = lookup(env, "OMPI_COMM_WORLD_RANK");
  const auto size = lookup(env, "OMPI_COMM_WORLD_SIZE");
  if (!rank && !size) {
    return std::nullopt;
  }
  LaunchInfo info;
  info.launcher = "openmpi";
  const std::string why = "Open MPI launch: OMPI_COMM_WORLD_RANK and _SIZE go together";
  info.rank = parse_int("OMPI_COMM_WORLD_RANK",
                        require(env, "OMPI_COMM_WORLD_RANK", info.launcher, why), info.launcher);
  info.world_size =
      parse_int("OMPI_COMM_WORLD_SIZE", require(env, "OMPI_COMM_WORLD_SIZE", info.launcher, why),
                info.launcher);
  const auto local = lookup(env, "OMPI_COMM_WORLD_LOCAL_RANK");
  info.local_rank = local ? parse_int("OMPI_COMM_WORLD_LOCAL_RANK", *local, info.launcher) : 0;
  if (const auto local_world = lookup(env, "OMPI_COMM_WORLD_LOCAL_SIZE")) {
    info.local_world_size =
        std::max(1, parse_int("OMPI_COMM_WORLD_LOCAL_SIZE", *local_world, info.launcher));
  }
  check_ranks(info, "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK");
  if (info.world_size > 1) {
    read_master(env, info,
                "mpirun gives no rendezvous address: pass -x MASTER_ADDR=<host of rank 0> -x "
                "MASTER_PORT=<free port>");
  }
  return info;
}

// Splits at commas outside brackets.
std::vector<std::string> split_top_level(const std::string& text) {
  std::vector<std::string> parts;
  std::string current;
  int depth = 0;
  for (char c : text) {
    if (c == '[') {
      ++depth;
    } else if (c == ']') {
      --depth;
    }
    if (c == ',' && depth == 0) {
      parts.push_back(current);
      current.clear();
    } else {
      current += c;
    }
  }
  parts.push_back(current);
  return parts;
}

// "01-04,07" -> 01 02 03 04 07 (width of the lower bound kept, as Slurm does).
std::vector<std::string> expand_range_list(const std::string& list, const std::string& item) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string::npos) {
      comma = list.size();
    }
    const std::string range = list.substr(start, comma - start);
    const size_t dash = range.find('-');
    const std::string lo_text = range.substr(0, dash);
    const std::string hi_text = dash == std::string::npos ? lo_text : range.substr(dash + 1);
    auto is_number = [](const std::string& s) {
      if (s.empty() || s.size() > 18) {
        return false;
      }
      for (char c : s) {
        if (!std::isdigit(static_cast<unsigned char>(c))) {
          return false;
        }
      }
      return true;
    };
    if (!is_number(lo_text) || !is_number(hi_text)) {
      fail(ErrorKind::kUsage, "hostlist '{}': '{}' is not a number or range like 01-04", item,
           range);
    }
    const int64_t lo = std::stoll(lo_text);
    const int64_t hi = std::stoll(hi_text);
    if (hi < lo) {
      fail(ErrorKind::kUsage, "hostlist '{}': range '{}' runs backwards", item, range);
    }
    if (hi - lo > 100000) {
      fail(ErrorKind::kUsage, "hostlist '{}': range '{}' is implausibly large", item, range);
    }
    const size_t width = lo_text.size();
    for (int64_t v = lo; v <= hi; ++v) {
      std::string digits = std::to_string(v);
      if (digits.size() < width) {
        digits.insert(0, width - digits.size(), '0');
      }
      out.push_back(digits);
    }
    start = comma + 1;
  }
  return out;
}

// One comma-free item with any number of bracket groups: "rack[1-2]-n[1,3]".
std::vector<std::string> expand_item(const std::string& item) {
  std::vector<std::string> hosts = {""};
  size_t pos = 0;
  while (pos < item.size()) {
    const size_t open = item.find('[', pos);
    const std::string literal = item.substr(pos, open == std::string::npos ? open : open - pos);
    if (literal.find(']') != std::string::npos) {
      fail(ErrorKind::kUsage, "hostlist '{}': unbalanced ']'", item);
    }
    for (auto& h : hosts) {
      h += literal;
    }
    if (open == std::string::npos) {
      break;
    }
    const size_t close = item.find(']', open);
    if (close == std::string::npos) {
      fail(ErrorKind::kUsage, "hostlist '{}': '[' without ']'", item);
    }
    const std::string inner = item.substr(open + 1, close - open - 1);
    if (inner.find('[') != std::string::npos) {
      fail(ErrorKind::kUsage, "hostlist '{}': nested brackets", item);
    }
    const std::vector<std::string> suffixes = expand_range_list(inner, item);
    std::vector<std::string> next;
    next.reserve(hosts.size() * suffixes.size());
    for (const auto& h : hosts) {
      for (const auto& s : suffixes) {
        next.push_back(h + s);
      }
    }
    hosts = std::move(next);
    pos = close + 1;
  }
  return hosts;
}

}  // namespace

std::string LaunchInfo::describe() const {
  if (world_size == 1) {
    return fmt::format("rank 0 of 1 ({})", launcher);
  }
  return fmt::format("rank {} of {} (local {}, {}, rendezvous {}:{})", rank, world_size, local_rank,
                     launcher, master_addr, master_port);
}

Environment current_environment() {
  Environment env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string entry(*e);
    const size_t eq = entry.find('=');
    if (eq != std::string::npos) {
      env.emplace(entry.substr(0, eq), entry.substr(eq + 1));
    }
  }
  return env;
}

LaunchInfo discover_launch(const Environment& env) {
  std::optional<LaunchInfo> info = from_torchrun(env);
  if (!info) {
    info = from_slurm(env);
  }
  if (!info) {
    info = from_openmpi(env);
  }
  if (!info) {
    info = LaunchInfo{};
  }
  if (const auto ifname = lookup(env, "GLOO_SOCKET_IFNAME")) {
    info->gloo_interface = *ifname;
  }
  return *info;
}

int cuda_device_index(const LaunchInfo& launch, int visible_devices) {
  if (visible_devices < 1) {
    fail(ErrorKind::kUsage, "{}: no CUDA device is visible (CUDA_VISIBLE_DEVICES?)",
         launch.describe());
  }
  if (visible_devices == 1) {
    return 0;
  }
  if (launch.local_rank >= visible_devices) {
    fail(ErrorKind::kUsage,
         "{}: local rank {} but only {} CUDA devices are visible; start at most one rank per GPU "
         "on each node",
         launch.describe(), launch.local_rank, visible_devices);
  }
  return launch.local_rank;
}

int slurm_default_port(int64_t job_id) { return 20000 + static_cast<int>(job_id % 20000); }

std::vector<std::string> expand_hostlist(const std::string& hostlist) {
  std::vector<std::string> hosts;
  for (const auto& raw : split_top_level(hostlist)) {
    const std::string item = trim(raw);
    if (item.empty()) {
      fail(ErrorKind::kUsage, "hostlist '{}' has an empty entry", hostlist);
    }
    for (auto& h : expand_item(item)) {
      hosts.push_back(std::move(h));
    }
  }
  return hosts;
}

}  // namespace duet::distributed
