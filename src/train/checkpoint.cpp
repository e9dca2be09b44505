// The checkpoint layout (see checkpoint.h). Model weights are read tensor by tensor into a name
// map and copied into the module with name and shape checks, rather than through LibTorch's
// module loader, which would move parameters to whatever device the archive names and gives no
// list of what does not fit.
#include "train/checkpoint.h"

#include <ATen/Context.h>
#include <torch/serialize.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "common/logging.h"
#include "common/tensor_text.h"
#include "config/loader.h"
#include "duet/build_info.h"

namespace fs = std::filesystem;

namespace duet::train {
namespace {

constexpr const char* kModelFile = "model.pt";
constexpr const char* kOptimizerFile = "optimizer.pt";
constexpr const char* kRanksFile = "ranks.json";

std::string to_hex(const torch::Tensor& bytes) {
  const torch::Tensor flat = bytes.contiguous().to(torch::kCPU);
  const auto* data = flat.data_ptr<uint8_t>();
  static const char* digits = "0123456789abcdef";
  std::string hex;
  hex.reserve(static_cast<size_t>(flat.numel()) * 2);
  for (int64_t i = 0; i < flat.numel(); ++i) {
    hex += digits[data[i] >> 4];
    hex += digits[data[i] & 15];
  }
  return hex;
}

torch::Tensor from_hex(const std::string& hex, const std::string& what, const std::string& where) {
  auto value = [](char c) -> int {
    if (c >= '0' && c <= '9') {
      return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
      return c - 'a' + 10;
    }
    return -1;
  };
  DUET_CHECK(hex.size() % 2 == 0, "{}: malformed {} (odd number of hex digits)", where, what);
  torch::Tensor bytes = torch::empty({static_cast<int64_t>(hex.size() / 2)}, torch::kUInt8);
  auto* data = bytes.data_ptr<uint8_t>();
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int high = value(hex[i]);
    const int low = value(hex[i + 1]);
    DUET_CHECK(high >= 0 && low >= 0, "{}: malformed {} (not hex digits)", where, what);
    data[i / 2] = static_cast<uint8_t>(high * 16 + low);
  }
  return bytes;
}

// Reads every tensor of a torch::save(module) archive, names joined with dots as
// named_parameters() gives them.
void read_archive(torch::serialize::InputArchive& archive, const std::string& prefix,
                  std::map<std::string, torch::Tensor>& out) {
  for (const auto& key : archive.keys()) {
    torch::Tensor tensor;
    if (archive.try_read(key, tensor)) {
      out.emplace(prefix + key, tensor);
      continue;
    }
    torch::serialize::InputArchive child;
    if (archive.try_read(key, child)) {
      read_archive(child, prefix + key + ".", out);
    }
  }
}

std::string file_in(const std::string& checkpoint, const char* name) {
  return (fs::path(checkpoint) / name).string();
}

// The model file's tensors on the CPU, whatever device wrote them.
std::map<std::string, torch::Tensor> read_model_file(const std::string& checkpoint) {
  const std::string file = file_in(checkpoint, kModelFile);
  std::map<std::string, torch::Tensor> tensors;
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(file, torch::Device(torch::kCPU));
    read_archive(archive, "", tensors);
  } catch (const c10::Error& e) {
    fail("cannot read the model weights of checkpoint '{}' ({}): {}", checkpoint, file,
         e.what_without_backtrace());
  }
  return tensors;
}

void copy_into(torch::nn::Module& model, const std::map<std::string, torch::Tensor>& saved,
               const std::string& checkpoint) {
  std::map<std::string, torch::Tensor> targets;
  for (const auto& item : model.named_parameters(/*recurse=*/true)) {
    targets.emplace(item.key(), item.value());
  }
  for (const auto& item : model.named_buffers(/*recurse=*/true)) {
    targets.emplace(item.key(), item.value());
  }
  std::vector<std::string> problems;
  for (const auto& [name, target] : targets) {
    const auto found = saved.find(name);
    if (found == saved.end()) {
      problems.push_back(fmt::format("'{}' is missing", name));
    } else if (found->second.sizes() != target.sizes()) {
      problems.push_back(fmt::format("'{}' has shape {} in the checkpoint, {} in the model", name,
                                     shape_text(found->second.sizes().vec()), shape_text(target.sizes().vec())));
    }
  }
  for (const auto& [name, tensor] : saved) {
    if (!targets.count(name)) {
      problems.push_back(fmt::format("'{}' is not part of this model", name));
    }
  }
  if (!problems.empty()) {
    std::string list;
    for (size_t i = 0; i < problems.size() && i < 12; ++i) {
      list += "\n  " + problems[i];
    }
    if (problems.size() > 12) {
      list += fmt::format("\n  and {} more", problems.size() - 12);
    }
    fail("checkpoint '{}' does not fit this model (was it trained with another model config?):{}",
         checkpoint, list);
  }
  torch::NoGradGuard no_grad;
  for (auto& [name, target] : targets) {
    target.copy_(saved.at(name));
  }
}

void write_json(const std::string& path, const nlohmann::json& json) {
  std::ofstream out(path, std::ios::binary);
  out << json.dump(1) << "\n";
  if (!out) {
    fail("cannot write '{}'", path);
  }
}

nlohmann::json read_json(const std::string& path, const std::string& checkpoint) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    fail(
        "checkpoint '{}' has no {}: it was written by an earlier duet, whose checkpoints kept "
        "per-rank state elsewhere, and cannot be resumed exactly; start a new run from its weights "
        "with model.init_from: {}",
        checkpoint, fs::path(path).filename().string(), checkpoint);
  }
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail("checkpoint '{}': {} does not parse ({})", checkpoint, path, e.what());
  }
}

}  // namespace

nlohmann::json RankState::to_json() const {
  nlohmann::json json = {{"loader", loader}, {"cpu_rng", to_hex(cpu_rng)}};
  json["cuda_rng"] = cuda_rng.defined() ? nlohmann::json(to_hex(cuda_rng)) : nlohmann::json();
  return json;
}

RankState RankState::from_json(const nlohmann::json& json, const std::string& where) {
  RankState state;
  try {
    state.loader = json.at("loader");
    state.cpu_rng = from_hex(json.at("cpu_rng").get<std::string>(), "CPU generator state", where);
    if (!json.at("cuda_rng").is_null()) {
      state.cuda_rng =
          from_hex(json.at("cuda_rng").get<std::string>(), "CUDA generator state", where);
    }
  } catch (const nlohmann::json::exception& e) {
    fail("{}: malformed rank state ({})", where, e.what());
  }
  return state;
}

RankState capture_rank_state(const std::string& loader_state, const torch::Device& device) {
  RankState state;
  state.loader = nlohmann::json::parse(loader_state);
  {
    auto generator = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(generator.mutex());
    state.cpu_rng = generator.get_state();
  }
  if (device.is_cuda()) {
    // Device-generic: no CUDA header is needed, and a CPU build never gets here.
    at::Generator generator = at::globalContext().defaultGenerator(device);  // a handle
    std::lock_guard<std::mutex> lock(generator.mutex());
    state.cuda_rng = generator.get_state();
  }
  return state;
}

void restore_generators(const RankState& state, const torch::Device& device,
                        const std::string& checkpoint) {
  {
    auto generator = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(state.cpu_rng);
  }
  const auto logger = log::get("checkpoint");
  if (device.is_cuda() && state.cuda_rng.defined()) {
    at::Generator generator = at::globalContext().defaultGenerator(device);  // a handle
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(state.cuda_rng);
  } else if (device.is_cuda()) {
    logger->warn(
        "checkpoint '{}' was written on the CPU and is resumed on {}: the GPU's random numbers "
        "(patch dropout) start fresh, so the run does not repeat an uninterrupted one exactly",
        checkpoint, device.str());
  } else if (state.cuda_rng.defined()) {
    logger->warn(
        "checkpoint '{}' was written on a GPU and is resumed on the CPU: random numbers drawn on "
        "the GPU before now come from the CPU generator, so the run does not repeat an "
        "uninterrupted one exactly",
        checkpoint);
  }
}

std::string save_checkpoint(CheckpointStore& store, int64_t step, const std::string& config_yaml,
                            const torch::nn::Module& model, const CheckpointedOptimizer& optimizer,
                            const std::vector<RankState>& ranks) {
  DUET_CHECK(!ranks.empty(), "save_checkpoint: no rank state");
  const nlohmann::json meta = {{"step", step},
                               {"world_size", static_cast<int>(ranks.size())},
                               {"config", config_yaml},
                               {"duet_version", DUET_VERSION}};
  nlohmann::json rank_entries = nlohmann::json::array();
  for (const RankState& rank : ranks) {
    rank_entries.push_back(rank.to_json());
  }
  return store.save(step, meta, [&](const std::string& dir) {
    torch::serialize::OutputArchive model_archive;
    model.save(model_archive);
    model_archive.save_to(file_in(dir, kModelFile));
    torch::serialize::OutputArchive optimizer_archive;
    optimizer.save(optimizer_archive);
    optimizer_archive.save_to(file_in(dir, kOptimizerFile));
    write_json(file_in(dir, kRanksFile), {{"ranks", rank_entries}});
  });
}

int checkpoint_world_size(const CheckpointInfo& checkpoint) {
  return checkpoint.meta.value("world_size", 1);
}

std::string checkpoint_config(const CheckpointInfo& checkpoint) {
  try {
    return checkpoint.meta.at("config").get<std::string>();
  } catch (const nlohmann::json::exception& e) {
    fail("checkpoint '{}' has no stored config in its manifest ({})", checkpoint.path, e.what());
  }
}

config::Config load_checkpoint_config(const CheckpointInfo& checkpoint,
                                      const std::vector<std::string>& overrides) {
  return config::load_string(checkpoint_config(checkpoint),
                             (fs::path(checkpoint.path) / "config").string(), overrides);
}

RankState load_for_resume(const CheckpointInfo& checkpoint, int rank, int world_size,
                          torch::nn::Module& model, CheckpointedOptimizer& optimizer,
                          const torch::Device& device) {
  const int saved_world = checkpoint_world_size(checkpoint);
  if (saved_world != world_size) {
    fail(ErrorKind::kConfig,
         "checkpoint '{}' was written by {} rank(s); resume it with the same number of ranks "
         "(this job has {})",
         checkpoint.path, saved_world, world_size);
  }
  const nlohmann::json ranks = read_json(file_in(checkpoint.path, kRanksFile), checkpoint.path);
  load_model_weights(model, checkpoint);
  const std::string optimizer_file = file_in(checkpoint.path, kOptimizerFile);
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(optimizer_file, device);
    optimizer.load(archive, device);
  } catch (const c10::Error& e) {
    fail("cannot read the optimiser state of checkpoint '{}' ({}): {}", checkpoint.path,
         optimizer_file, e.what_without_backtrace());
  }
  const std::string where =
      fmt::format("checkpoint '{}', {} rank {}", checkpoint.path, kRanksFile, rank);
  try {
    const nlohmann::json& entries = ranks.at("ranks");
    DUET_CHECK(entries.is_array() && entries.size() == static_cast<size_t>(world_size),
               "checkpoint '{}': {} holds {} rank entries, the manifest says {} ranks",
               checkpoint.path, kRanksFile, entries.is_array() ? entries.size() : 0, world_size);
    return RankState::from_json(entries.at(static_cast<size_t>(rank)), where);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: malformed ({})", where, e.what());
  }
}

std::map<std::string, torch::Tensor> read_model_tensors(const std::string& checkpoint) {
  return read_model_tensors(CheckpointStore::validate(checkpoint));
}

std::map<std::string, torch::Tensor> read_model_tensors(const CheckpointInfo& checkpoint) {
  return read_model_file(checkpoint.path);
}

void load_model_weights(torch::nn::Module& model, const std::string& checkpoint) {
  load_model_weights(model, CheckpointStore::validate(checkpoint));
}

void load_model_weights(torch::nn::Module& model, const CheckpointInfo& checkpoint) {
  copy_into(model, read_model_tensors(checkpoint), checkpoint.path);
}

bool is_checkpoint_dir(const std::string& path) {
  return !path.empty() && CheckpointStore::holds_manifest(path);
}

}  // namespace duet::train
