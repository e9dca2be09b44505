// The checkpoint layout (train/checkpoint.h), on the CPU:
//  - a checkpoint whose model file says its tensors live on cuda:0 (as one written on a GPU
//    does) is read on this machine, by the trainer's loader and by export's import; LibTorch's
//    plain module loader, which duet used before, cannot read it without a GPU;
//  - one layout for one rank and for many: every rank gets its own loader position and
//    generators back; another number of ranks is refused; a checkpoint of the earlier layout
//    is refused for resuming with a message that says what still works;
//  - the CPU generator is restored exactly (the CUDA one: test_train_cuda.cpp);
//  - the checkpoint's file names are spelled in one source file only.
#include <caffe2/serialize/inline_container.h>
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <regex>

#include "common/error.h"
#include "common/test_util.h"
#include "export/model_io.h"
#include "models/clip_model.h"
#include "models/model_test_util.h"
#include "train/checkpoint.h"
#include "train/optimizer.h"

namespace fs = std::filesystem;
using duet::test::TempDir;

namespace {

duet::models::ClipModel tiny_model(uint64_t seed) {
  torch::manual_seed(seed);
  return duet::models::ClipModel(duet::models::test::tiny_config(),
                                 duet::models::test::tiny_tokenizer());
}

std::string save_tiny_checkpoint(const std::string& dir, duet::models::ClipModel& model,
                                 int ranks) {
  duet::train::CheckpointStore store(dir, 5);
  const auto optimizer = duet::train::make_adamw(*model, {});
  std::vector<duet::train::RankState> states;
  for (int r = 0; r < ranks; ++r) {
    states.push_back(
        duet::train::capture_rank_state(nlohmann::json{{"rank", r}}.dump(), torch::kCPU));
  }
  return duet::train::save_checkpoint(store, 7, "{}", *model, *optimizer, states);
}

// Rewrites a TorchScript archive so that its storages say "cuda:0" where they said "cpu": what
// torch::save writes for a model on a GPU. The pickled device string is memoised, so its first
// occurrence is the one to change.
void make_archive_say_cuda(const std::string& path) {
  std::vector<std::pair<std::string, std::string>> records;
  {
    caffe2::serialize::PyTorchStreamReader reader(path);
    for (const auto& name : reader.getAllRecords()) {
      auto [data, size] = reader.getRecord(name);
      records.emplace_back(name, std::string(static_cast<const char*>(data.get()), size));
    }
  }
  const std::string cpu(
      "X\x03\x00\x00\x00"
      "cpu",
      8);
  const std::string cuda(
      "X\x06\x00\x00\x00"
      "cuda:0",
      11);
  int patched = 0;
  for (auto& [name, bytes] : records) {
    const auto at = bytes.find(cpu);
    if (name.size() >= 4 && name.substr(name.size() - 4) == ".pkl" && at != std::string::npos) {
      bytes.replace(at, cpu.size(), cuda);
      ++patched;
    }
  }
  REQUIRE(patched > 0);
  fs::remove(path);
  caffe2::serialize::PyTorchStreamWriter writer(path);
  for (const auto& [name, bytes] : records) {
    if (name == ".data/version" || name == "version" || name == ".data/serialization_id") {
      continue;  // the writer writes its own
    }
    writer.writeRecord(name, bytes.data(), bytes.size());
  }
  writer.writeEndOfFile();
}

bool same_parameters(duet::models::ClipModel& a, duet::models::ClipModel& b) {
  const auto pa = a->parameters();
  const auto pb = b->parameters();
  for (size_t i = 0; i < pa.size(); ++i) {
    if (!pa[i].equal(pb[i])) {
      return false;
    }
  }
  return true;
}

}  // namespace

TEST_CASE("a checkpoint written on a GPU is read on a machine without one", "[checkpoint]") {
  TempDir dir;
  auto source = tiny_model(1);
  const std::string written = save_tiny_checkpoint(dir / "cpu", source, 1);
  // The same checkpoint as a GPU run leaves it: model.pt's storages on cuda:0, manifest rebuilt.
  duet::train::CheckpointStore gpu_store(dir / "gpu", 5);
  const auto info = duet::train::CheckpointStore::validate(written);
  const std::string gpu = gpu_store.save(7, info.meta, [&](const std::string& tmp) {
    for (const auto& entry : fs::directory_iterator(written)) {
      if (entry.path().filename() != "manifest.json") {
        fs::copy_file(entry.path(), fs::path(tmp) / entry.path().filename());
      }
    }
    make_archive_say_cuda((fs::path(tmp) / "model.pt").string());
  });

  if (!torch::cuda::is_available()) {
    // The control: LibTorch's loader restores tensors where the archive says, and there is no
    // GPU here. This is how `duet eval`, `export`, `embed` and model.init_from loaded before.
    auto plain = tiny_model(2);
    CHECK_THROWS(torch::load(plain, gpu + "/model.pt"));
  }
  auto trainer_side = tiny_model(3);
  duet::train::load_model_weights(*trainer_side, gpu);
  CHECK(same_parameters(trainer_side, source));
  for (const auto& p : trainer_side->parameters()) {
    CHECK(p.device().is_cpu());
  }
  auto export_side = tiny_model(4);  // `duet export/embed/retrieve --checkpoint`, init_from
  duet::export_::load_weights(*export_side, gpu);
  CHECK(same_parameters(export_side, source));
}

TEST_CASE("one layout for one rank and many: each rank resumes its own state", "[checkpoint]") {
  TempDir dir;
  auto model = tiny_model(5);
  const std::string path = save_tiny_checkpoint(dir.path().string(), model, 3);
  const auto info = duet::train::CheckpointStore::validate(path);
  CHECK(duet::train::checkpoint_world_size(info) == 3);
  CHECK(fs::exists(path + "/ranks.json"));
  for (int r = 0; r < 3; ++r) {
    auto resumed = tiny_model(6);
    const auto optimizer = duet::train::make_adamw(*resumed, {});
    const auto state = duet::train::load_for_resume(info, r, 3, *resumed, *optimizer, torch::kCPU);
    CHECK(state.loader.at("rank").get<int>() == r);
    CHECK(same_parameters(resumed, model));
  }
  auto other = tiny_model(7);
  const auto optimizer = duet::train::make_adamw(*other, {});
  try {
    duet::train::load_for_resume(info, 0, 2, *other, *optimizer, torch::kCPU);
    FAIL("a 3-rank checkpoint was resumed by 2 ranks");
  } catch (const duet::Error& e) {
    CHECK(e.kind() == duet::ErrorKind::kConfig);
    CHECK_THAT(e.what(), Catch::Contains("written by 3 rank(s)"));
  }

  // A checkpoint of the earlier layout (no ranks.json) still gives its weights, but is not
  // resumed as if exact.
  fs::remove(path + "/ranks.json");
  nlohmann::json manifest;
  std::ifstream(path + "/manifest.json") >> manifest;
  manifest["files"].erase("ranks.json");
  std::ofstream(path + "/manifest.json") << manifest.dump();
  const auto old = duet::train::CheckpointStore::validate(path);
  CHECK_THROWS_WITH(duet::train::load_for_resume(old, 0, 3, *other, *optimizer, torch::kCPU),
                    Catch::Contains("model.init_from"));
  duet::train::load_model_weights(*other, path);
  CHECK(same_parameters(other, model));
}

TEST_CASE("the CPU generator's state comes back exactly", "[checkpoint]") {
  torch::manual_seed(11);
  const auto state = duet::train::capture_rank_state("{}", torch::kCPU);
  CHECK_FALSE(state.cuda_rng.defined());
  const torch::Tensor first = torch::rand({8});
  const auto round_trip = duet::train::RankState::from_json(state.to_json(), "test");
  duet::train::restore_generators(round_trip, torch::kCPU, "test");
  CHECK(torch::rand({8}).equal(first));
}

TEST_CASE("a checkpoint's file names are spelled in one source file", "[checkpoint]") {
  // export re-declared "model.pt" before; every reader now goes through train/checkpoint.h.
  const std::regex names("\"(model\\.pt|optimizer\\.pt|ranks\\.json|rng\\.pt)\"");
  std::vector<std::string> spelled_in;
  for (const auto& entry :
       fs::recursive_directory_iterator(fs::path(DUET_TEST_SOURCE_DIR) / "src")) {
    if (!entry.is_regular_file()) {
      continue;
    }
    std::ifstream in(entry.path());
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (std::regex_search(text, names)) {
      spelled_in.push_back(fs::relative(entry.path(), DUET_TEST_SOURCE_DIR).string());
    }
  }
  CHECK(spelled_in == std::vector<std::string>{"src/train/checkpoint.cpp"});
}
