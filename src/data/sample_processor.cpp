// Per-sample decode, transform and tokenisation (see sample_processor.h).
#include "data/sample_processor.h"

#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>

#include "common/strings.h"
#include "data/image_decode.h"
#include "text/tokenizer.h"

namespace duet::data {
namespace {

bool read_file(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return false;
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) {
    return false;
  }
  out = buffer.str();
  return true;
}

ProcessResult skip(SkipReason reason, std::string detail) {
  ProcessResult r;
  r.reason = reason;
  r.detail = std::move(detail);
  return r;
}

ProcessResult process(RawSample raw, const ProcessOptions& options, uint64_t sample_seed) {
  if (raw.problem) {
    return skip(*raw.problem, raw.problem_detail);
  }
  ProcessedSample out;
  out.where = std::move(raw.where);
  if (raw.caption) {
    out.caption = trim(*raw.caption);
  }
  if (options.need_caption) {
    if (!raw.caption) {
      return skip(SkipReason::kMissingCaption, "no caption (.txt member or caption column)");
    }
    if (out.caption.empty()) {
      return skip(SkipReason::kEmptyCaption, "empty caption");
    }
  }
  if (raw.label) {
    out.label = *raw.label;
  } else if (!out.caption.empty()) {
    // Labelled sets may carry the class index as the caption.
    int64_t value = 0;
    const char* end = out.caption.data() + out.caption.size();
    const auto [ptr, ec] = std::from_chars(out.caption.data(), end, value);
    if (ec == std::errc() && ptr == end && value >= 0) {
      out.label = value;
    }
  }
  if (options.need_label && out.label < 0) {
    return skip(SkipReason::kMissingLabel, "no .cls member and the caption is not a class index");
  }

  if (!raw.image_path.empty() && !read_file(raw.image_path, raw.image)) {
    return skip(SkipReason::kUnreadableFile, "cannot read '" + raw.image_path + "'");
  }
  const auto* bytes = reinterpret_cast<const uint8_t*>(raw.image.data());
  const int size = options.image_size;
  try {
    const ImageHeader header = read_image_header(bytes, raw.image.size());
    Rng rng(sample_seed);
    CropBox box;
    bool flip = false;
    if (options.train) {
      box = random_resized_crop_box(header.width, header.height, options.scale_min,
                                    options.scale_max, options.ratio_min, options.ratio_max, rng);
      flip = options.hflip && rng.uniform() < 0.5;
    } else {
      box = center_crop_box(header.width, header.height, size);
    }
    int min_width = 0;
    int min_height = 0;
    if (options.jpeg_dct_scaling && header.format == ImageFormat::kJpeg) {
      // Smallest decode in which the box still has at least size x size pixels.
      min_width = static_cast<int>(std::ceil(header.width * (size / box.width())));
      min_height = static_cast<int>(std::ceil(header.height * (size / box.height())));
    }
    const Image image = decode_image(bytes, raw.image.size(), min_width, min_height);
    if (image.width != header.width || image.height != header.height) {
      box = rescale_box(box, header.width, header.height, image.width, image.height);
    }
    out.image.resize(static_cast<size_t>(3) * size * size);
    resample_normalize(image, box, size, flip, options.norm, out.image.data());
  } catch (const ImageDecodeError& e) {
    return skip(SkipReason::kCorruptImage, e.what());
  }
  if (options.tokenizer) {
    out.tokens = options.tokenizer->tokenize(out.caption, options.context_length);
  }
  ProcessResult r;
  r.ok = true;
  r.sample = std::move(out);
  return r;
}

}  // namespace

ProcessResult process_sample(RawSample raw, const ProcessOptions& options, uint64_t sample_seed) {
  // One bad sample must not end the run: whatever it throws (std::bad_alloc for an image that
  // passed the header checks but not the allocation, a tokenizer or transform error) skips it.
  try {
    return process(std::move(raw), options, sample_seed);
  } catch (const std::exception& e) {
    return skip(SkipReason::kSampleError, e.what());
  } catch (...) {
    return skip(SkipReason::kSampleError, "unknown exception");
  }
}

}  // namespace duet::data
