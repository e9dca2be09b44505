#pragma once
// LAION CLIP_benchmark's WebDataset layout, read as it is (`clip_benchmark eval --dataset
// wds/NAME --dataset_root DIR`):
//   DIR/SPLIT/nshards.txt                   the number of shards N (required)
//   DIR/SPLIT/0.tar ... DIR/SPLIT/{N-1}.tar  samples: KEY.webp|png|jpg|jpeg, and KEY.cls (class
//                                           index), KEY.txt (retrieval: captions, one a line)
//                                           or KEY.npy (multilabel: a [C] 0/1 vector)
//   DIR/dataset_type.txt                    classification (default when absent), retrieval
//                                           or multilabel
//   DIR/classnames.txt                      one class name a line (classification, multilabel)
//   DIR/zeroshot_classification_templates.txt   one prompt a line, "{c}" for the class name
// The rules are CLIP_benchmark's: class names and templates are stripped lines, templates are
// filled like Python's str.format(c=name), retrieval captions are the .txt split into lines.
// Anything missing or malformed is a duet::Error naming the file. Torch-free.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace duet::data {

enum class BenchmarkTask { kClassification, kRetrieval, kMultilabel };

// CLIP_benchmark's names: "zeroshot_classification" (classification and multilabel) or
// "zeroshot_retrieval", as its result files carry them.
const char* benchmark_task_name(BenchmarkTask task);

struct ClipBenchmarkDataset {
  std::string dir;
  std::string split;
  std::string name;  // "BASENAME/SPLIT": the prefix of its metrics during training
  BenchmarkTask task = BenchmarkTask::kClassification;
  std::vector<std::string> shards;      // DIR/SPLIT/0.tar ... in order
  std::vector<std::string> classnames;  // classification and multilabel
  std::vector<std::string> templates;   // classification and multilabel, with "{c}"
};

// Reads the metadata of DIR's split. Shards are checked to exist, not opened.
ClipBenchmarkDataset read_clip_benchmark_dataset(const std::string& dir,
                                                 const std::string& split = "test");

// eval.benchmarks entries: "DIR" or "DIR:SPLIT" (split "test" when none is given).
ClipBenchmarkDataset read_clip_benchmark_spec(const std::string& spec);

// True when DIR has SPLIT/nshards.txt.
bool is_clip_benchmark_dataset(const std::string& dir, const std::string& split = "test");

// `pattern` with "{c}" replaced by `classname` and "{{" / "}}" by "{" / "}", as Python's
// str.format(c=classname); any other replacement field is a duet::Error naming `where`.
std::string fill_benchmark_template(const std::string& pattern, const std::string& classname,
                                    const std::string& where = "template");

// The prompts of class c: every template filled with classnames[c].
std::vector<std::vector<std::string>> benchmark_prompts(const ClipBenchmarkDataset& dataset);

// Python's str.splitlines() for retrieval captions: splits at \n, \r\n and \r; a final line
// break does not start an empty line.
std::vector<std::string> split_caption_lines(const std::string& text);

// Multilabel targets: KEY.npy members of the shards, keyed as the loader keys samples
// ("SHARD:KEY"), each a vector of `classes` values (bool, integer or float .npy of that many
// elements, nonzero = positive).
std::map<std::string, std::vector<uint8_t>> read_multilabel_targets(
    const std::vector<std::string>& shards, int64_t classes);

}  // namespace duet::data
