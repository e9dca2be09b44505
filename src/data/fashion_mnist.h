#pragma once
// `duet data fashion-mnist`: builds duet's default dataset from Debian's dataset-fashion-mnist
// (IDX files) as WebDataset shards that the loader reads like any other. OUT itself is also a
// LAION CLIP_benchmark dataset (`clip_benchmark eval --dataset wds/NAME --dataset_root OUT`):
// its evaluation splits are named as CLIP_benchmark reads them and carry its metadata files.
//
// Layout "single" (one garment per image):
//   OUT/train/000000.tar ...   60,000 samples (img2dataset's zero-padded shard names)
//   OUT/test/0.tar, 1.tar      10,000 samples, OUT/test/nshards.txt (CLIP_benchmark's names)
//   each sample KEY = the split's image index, zero-padded to 6 digits:
//     KEY.png   28x28 greyscale (the loader converts to RGB)
//     KEY.txt   caption: one of the prompt templates filled with the class name
//     KEY.cls   class index 0-9 (zero-shot evaluation reads it)
//   OUT/classnames.txt, OUT/templates.txt   zero-shot class names and prompt templates ("{}")
//   OUT/zeroshot_classification_templates.txt ("{c}"), OUT/dataset_type.txt (classification)
//   OUT/captions.txt                        every distinct training caption (for a tokenizer)
//   OUT/dataset.json                        brace patterns and counts of every split
// Layout "pairs" (two garments side by side in the middle band of a black 56x56 canvas, so a
// square crop keeps both):
//   captions name both garments and their positions ("a bag to the left of a sneaker");
//   KEY.cls = 10 * left + right, KEY.json names both garments. The ordered pairs (c, c+3 mod 10)
//   never appear in train/ or test/; heldout/ holds only them, so evaluation on heldout/ measures
//   compositional generalisation (each held-out garment pair is seen in training in the other
//   order, and every garment is seen on both sides). Splits: train 60,000, test 5,000, heldout
//   5,000, drawn from the matching IDX split. classnames.txt lists the 100 ordered pairs (class
//   10 * left + right, "a bag to the left of a sneaker"), templates "{}." / "{c}.", so test/ and
//   heldout/ are CLIP_benchmark zero-shot sets over the ordered pairs.
//   OUT/retrieval/ is a CLIP_benchmark retrieval dataset (dataset_type.txt: retrieval): its
//   test/ split holds one image of each of the 90 ordered pairs of distinct garments (held-out
//   ones included, marked in KEY.json), KEY.txt holding all four phrasings, one a line, so no
//   two images share a caption.
// Output is a deterministic function of the IDX files and the seed; shards are written in
// parallel, each atomically (tar_writer.h); .tar files already in a split's directory are
// removed first.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace duet::data {

struct FashionMnistOptions {
  std::string out_dir;
  std::string idx_dir = "/usr/share/datasets/fashion-mnist";
  std::string layout = "single";  // "single" or "pairs"
  int64_t shard_size = 5000;      // samples per tar shard
  uint64_t seed = 0;              // caption templates and pair draws
  int threads = 0;                // 0: hardware concurrency
};

struct SplitSummary {
  std::string pattern;  // brace pattern of its shards
  int64_t samples = 0;
  int64_t shards = 0;
};

struct FashionMnistSummary {
  std::map<std::string, SplitSummary> splits;  // "train", "test" (+ "heldout", "retrieval/test")
  std::string classnames;                      // path of classnames.txt
  std::string templates;                       // path of templates.txt
};

const std::vector<std::string>& fashion_mnist_classes();
const std::vector<std::string>& fashion_mnist_templates();  // with "{}" for the class name

// True when the ordered pair (left, right) is held out of the pairs layout's training split.
bool is_heldout_pair(int left, int right);

// The caption template number `variant` (mod the number of templates) for a pair.
std::string pair_caption(int left, int right, int variant);

FashionMnistSummary write_fashion_mnist(const FashionMnistOptions& options);

}  // namespace duet::data
