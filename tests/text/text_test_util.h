#pragma once
// Helpers shared by the tokenizer tests: a temporary directory removed at the end of the test,
// whole-file reads and writes, gunzip (the tests decompress the shared merges file), and running
// the real `duet` binary with its exit code and output.
#include <cstdint>
#include <string>
#include <vector>

namespace duet::text::test {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // Path of `name` inside the directory.
  std::string path(const std::string& name) const;

 private:
  std::string root_;
};

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& bytes);
std::string gunzip_file(const std::string& path);

// The shared CLIP merges file and a decompressed copy of it (made once per process).
std::string clip_merges_gz();
std::string clip_merges_plain();

struct Golden {
  std::string text;
  std::vector<int64_t> bpe;       // ids without SOT/EOT
  std::vector<int64_t> tokens77;  // SOT + ids + EOT, truncated keeping EOT, zero-padded
};
// The 119 cases of the shared clip_bpe_golden.jsonl.
const std::vector<Golden>& golden_cases();

// 360 captions in the style of zero-shot prompts (12 templates x 30 class names), enough to
// train a SentencePiece model of up to about 85 pieces.
std::vector<std::string> sample_captions();

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
// Runs `duet ARGS` through the shell (ARGS are single-quoted), feeding `input` on stdin.
CommandResult run_duet(const std::vector<std::string>& args, const std::string& input = "");

// "1 2 3" for {1, 2, 3}.
std::string join_ids(const std::vector<int64_t>& ids);

}  // namespace duet::text::test
