#pragma once
// A training set the tests write themselves - WebDataset shards of synthetic PNG patterns with
// captions "item N" and a SentencePiece tokenizer trained on those captions - and the config
// of a tiny model that trains on it. Nothing comes from outside the test, so the [cuda] tests
// run on a GPU machine that has none of Debian's datasets.
#include <string>
#include <vector>

#include "config/config.h"
#include "data_fixtures.h"

namespace duet::test {

class SyntheticRun {
 public:
  SyntheticRun();  // writes the shards and trains the tokenizer (about a second)

  // A run of `steps` steps of batch 16 (2 micro-batches of 8) on `device` ("cpu", "cuda",
  // "auto"), logging every step, with patch dropout (random numbers drawn on the device);
  // `overrides` are --set style.
  config::Config config(const std::string& output_dir, const std::string& run_name,
                        const std::string& device, int steps,
                        const std::vector<std::string>& overrides = {}) const;

 private:
  data::testing::TempDir dir_{"synthetic-run"};
  std::string shards_;
  std::string tokenizer_;
};

// The one SyntheticRun of a test binary, made on first use.
SyntheticRun& synthetic_run();

// The loss of every logged step of a run directory's metrics.jsonl.
std::vector<double> logged_losses(const std::string& run_dir);

}  // namespace duet::test
