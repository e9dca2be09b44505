// Implementation of the tokenizer tests' helpers (see text_test_util.h).
#include "text_test_util.h"

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <zlib.h>
#include <nlohmann/json.hpp>

namespace duet::text::test {

namespace fs = std::filesystem;

TempDir::TempDir() {
  static std::atomic<int> counter{0};
  const fs::path dir = fs::temp_directory_path() / ("duet_text_test_" + std::to_string(::getpid()) +
                                                    "_" + std::to_string(counter++));
  fs::create_directories(dir);
  root_ = dir.string();
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(root_, ec);
}

std::string TempDir::path(const std::string& name) const {
  return (fs::path(root_) / name).string();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw std::runtime_error("cannot open " + path);
  }
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  if (!out) {
    throw std::runtime_error("cannot write " + path);
  }
}

std::string gunzip_file(const std::string& path) {
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) {
    throw std::runtime_error("cannot open " + path);
  }
  std::string out;
  char buffer[1 << 16];
  int n = 0;
  while ((n = gzread(file, buffer, sizeof(buffer))) > 0) {
    out.append(buffer, static_cast<size_t>(n));
  }
  gzclose(file);
  if (n < 0) {
    throw std::runtime_error("cannot decompress " + path);
  }
  return out;
}

std::string clip_merges_gz() { return DUET_TEST_SHARED_DATA "/bpe_simple_vocab_16e6.txt.gz"; }

std::string clip_merges_plain() {
  static const TempDir dir;
  static const std::string path = [] {
    const std::string p = dir.path("bpe_simple_vocab_16e6.txt");
    write_file(p, gunzip_file(clip_merges_gz()));
    return p;
  }();
  return path;
}

const std::vector<Golden>& golden_cases() {
  static const std::vector<Golden> cases = [] {
    std::vector<Golden> out;
    std::istringstream lines(read_file(DUET_TEST_SHARED_DATA "/clip_bpe_golden.jsonl"));
    std::string line;
    while (std::getline(lines, line)) {
      if (line.empty()) {
        continue;
      }
      const auto json = nlohmann::json::parse(line);
      out.push_back({json.at("text").get<std::string>(), json.at("bpe").get<std::vector<int64_t>>(),
                     json.at("tokens77").get<std::vector<int64_t>>()});
    }
    return out;
  }();
  return cases;
}

// 360 captions in the style of the zero-shot prompts: 12 templates x 30 class names.
std::vector<std::string> sample_captions() {
  const std::vector<std::string> templates = {"a photo of a {}.",
                                              "a blurry photo of a {}.",
                                              "a black and white photo of a {}.",
                                              "a low contrast photo of a {}.",
                                              "a bright photo of the {}.",
                                              "a cropped photo of a {}.",
                                              "a close-up photo of the {}.",
                                              "a drawing of a {}.",
                                              "a sketch of the {}.",
                                              "a photo of my {}.",
                                              "a good photo of a {}.",
                                              "a photo of the small {}."};
  const std::vector<std::string> names = {
      "t-shirt", "trouser",    "pullover", "dress", "coat",   "sandal",    "shirt",    "sneaker",
      "bag",     "ankle boot", "dog",      "cat",   "horse",  "bird",      "airplane", "ship",
      "truck",   "frog",       "deer",     "car",   "apple",  "bicycle",   "chair",    "lamp",
      "tulip",   "rose",       "mountain", "river", "forest", "television"};
  std::vector<std::string> out;
  for (const auto& t : templates) {
    for (const auto& name : names) {
      out.push_back(t.substr(0, t.find("{}")) + name + t.substr(t.find("{}") + 2));
    }
  }
  return out;
}

namespace {

std::string shell_quote(const std::string& arg) {
  std::string out = "'";
  for (char c : arg) {
    out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  }
  return out + "'";
}

}  // namespace

CommandResult run_duet(const std::vector<std::string>& args, const std::string& input) {
  const TempDir dir;
  const std::string in = dir.path("stdin");
  const std::string out = dir.path("stdout");
  const std::string err = dir.path("stderr");
  write_file(in, input);
  std::string command = shell_quote(DUET_BINARY);
  for (const auto& arg : args) {
    command += " " + shell_quote(arg);
  }
  command += " <" + shell_quote(in) + " >" + shell_quote(out) + " 2>" + shell_quote(err);
  const int status = std::system(command.c_str());
  CommandResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.out = read_file(out);
  result.err = read_file(err);
  return result;
}

std::string join_ids(const std::vector<int64_t>& ids) {
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    out += (i > 0 ? " " : "") + std::to_string(ids[i]);
  }
  return out;
}

}  // namespace duet::text::test
