#pragma once
// Turns one raw sample into model inputs: reads the image file (CSV sources), decodes it,
// applies the eval or train transform, and tokenises the caption. Runs on the loader's worker
// threads: it is a pure function of (raw sample, options, sample seed) and only calls the
// tokenizer's const methods. Problems become a SkipReason, never an exception. Torch-free.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/sample.h"
#include "data/transforms.h"

namespace duet::text {
class Tokenizer;
}

namespace duet::data {

struct ProcessOptions {
  int image_size = 224;
  bool train = false;      // random resized crop (+ flip) instead of centre crop
  double scale_min = 0.9;  // random resized crop area range
  double scale_max = 1.0;
  double ratio_min = 3.0 / 4.0;
  double ratio_max = 4.0 / 3.0;
  bool hflip = false;
  Normalization norm;
  bool jpeg_dct_scaling = false;  // decode large JPEGs at a reduced scale when the crop allows
  bool need_caption = true;       // skip samples without a non-empty caption
  bool need_label = false;        // skip samples without a class index
  std::shared_ptr<const text::Tokenizer> tokenizer;  // null: no tokens
  int64_t context_length = 77;
};

struct ProcessedSample {
  std::vector<float> image;     // [3, S, S], normalised
  std::vector<int64_t> tokens;  // [context_length], empty without a tokenizer
  int64_t label = -1;           // class index, -1 when the sample has none
  std::string caption;
  std::string where;
};

struct ProcessResult {
  bool ok = false;
  SkipReason reason = SkipReason::kCorruptImage;  // when !ok
  std::string detail;                             // when !ok
  ProcessedSample sample;                         // when ok
};

ProcessResult process_sample(RawSample raw, const ProcessOptions& options, uint64_t sample_seed);

}  // namespace duet::data
