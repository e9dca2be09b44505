// Fashion-MNIST to WebDataset shards (see fashion_mnist.h). Every sample's random choices come
// from an RNG seeded with (seed, split, index), so shards can be written by any thread in any
// order and the output is still the same.
#include "data/fashion_mnist.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <tuple>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/logging.h"
#include "data/idx.h"
#include "data/image_encode.h"
#include "data/rng.h"
#include "data/tar_writer.h"
#include "data/zero_shot_prompts.h"

namespace duet::data {
namespace {

namespace fs = std::filesystem;

constexpr int kSide = 28;
constexpr int kClasses = 10;
constexpr int kHeldoutShift = 3;

struct IdxSplit {
  IdxArray images;                             // [N, 28, 28]
  IdxArray labels;                             // [N]
  std::vector<std::vector<int64_t>> by_class;  // image indices of each class
};

IdxSplit load_split(const std::string& dir, const std::string& prefix) {
  IdxSplit s;
  auto find = [&](const std::string& stem) {
    for (const char* suffix : {".gz", ""}) {
      const std::string path = dir + "/" + stem + suffix;
      if (fs::exists(path)) {
        return path;
      }
    }
    fail(
        "Fashion-MNIST file '{}/{}[.gz]' not found (install Debian's dataset-fashion-mnist or "
        "pass --idx-dir)",
        dir, stem);
  };
  s.images = read_idx(find(prefix + "-images-idx3-ubyte"));
  s.labels = read_idx(find(prefix + "-labels-idx1-ubyte"));
  DUET_CHECK(s.images.shape.size() == 3 && s.images.shape[1] == kSide &&
                 s.images.shape[2] == kSide && s.labels.shape.size() == 1 &&
                 s.labels.shape[0] == s.images.shape[0],
             "Fashion-MNIST {} files have unexpected shapes", prefix);
  s.by_class.resize(kClasses);
  for (int64_t i = 0; i < s.labels.shape[0]; ++i) {
    const int c = s.labels.data[static_cast<size_t>(i)];
    DUET_CHECK(c < kClasses, "Fashion-MNIST {} label {} out of range", prefix, c);
    s.by_class[static_cast<size_t>(c)].push_back(i);
  }
  return s;
}

std::string with_article(const std::string& noun) {
  const bool vowel = !noun.empty() && std::string("aeiou").find(noun[0]) != std::string::npos;
  return (vowel ? "an " : "a ") + noun;
}

// What one split of one layout contains and how sample i is made.
struct SplitPlan {
  std::string name;  // directory under OUT ("train", "test", "retrieval/test", ...)
  const IdxSplit* source = nullptr;
  int64_t samples = 0;
  bool pairs = false;
  bool heldout_only = false;  // pairs: only held-out pairs (else: never held-out pairs)
  uint64_t tag = 0;
  // Evaluation splits are named as CLIP_benchmark reads them: 0.tar, 1.tar, ... and
  // nshards.txt; training shards keep img2dataset's zero-padded names.
  bool clip_benchmark = false;
  bool every_pair_once = false;  // retrieval variant: sample i is ordered pair i, all captions
};

struct Made {
  std::string png;
  std::string caption;
  int64_t cls = 0;
  nlohmann::json json;
};

Made make_single(const SplitPlan& plan, int64_t i, uint64_t seed) {
  Rng rng(mix_seed({seed, plan.tag, static_cast<uint64_t>(i)}));
  const IdxSplit& s = *plan.source;
  const int c = s.labels.data[static_cast<size_t>(i)];
  const auto& names = fashion_mnist_classes();
  const auto& templates = fashion_mnist_templates();
  Made m;
  m.png =
      encode_png(s.images.data.data() + static_cast<size_t>(i) * kSide * kSide, kSide, kSide, 1);
  m.caption = fill_template(templates[rng.below(templates.size())], names[static_cast<size_t>(c)]);
  m.cls = c;
  return m;
}

// The i-th of the 90 ordered pairs of distinct garments, in (left, right) order.
std::pair<int, int> distinct_pair(int64_t i) {
  const int left = static_cast<int>(i / (kClasses - 1));
  const int r = static_cast<int>(i % (kClasses - 1));
  return {left, r < left ? r : r + 1};
}

Made make_pair(const SplitPlan& plan, int64_t i, uint64_t seed) {
  Rng rng(mix_seed({seed, plan.tag, static_cast<uint64_t>(i)}));
  const IdxSplit& s = *plan.source;
  int left = 0;
  int right = 0;
  if (plan.every_pair_once) {
    std::tie(left, right) = distinct_pair(i);
  } else if (plan.heldout_only) {
    left = static_cast<int>(rng.below(kClasses));
    right = (left + kHeldoutShift) % kClasses;
  } else {
    do {
      left = static_cast<int>(rng.below(kClasses));
      right = static_cast<int>(rng.below(kClasses));
    } while (left == right || is_heldout_pair(left, right));
  }
  const auto& lc = s.by_class[static_cast<size_t>(left)];
  const auto& rc = s.by_class[static_cast<size_t>(right)];
  const int64_t li = lc[rng.below(lc.size())];
  const int64_t ri = rc[rng.below(rc.size())];
  // A square 56x56 canvas, black, with the two garments side by side in its middle band: the
  // square crop of evaluation (and training's near-square crops) keep both whole.
  constexpr int kCanvas = 2 * kSide;
  constexpr int kTop = (kCanvas - kSide) / 2;
  std::vector<uint8_t> canvas(static_cast<size_t>(kCanvas * kCanvas), 0);
  for (int y = 0; y < kSide; ++y) {
    const uint8_t* l = s.images.data.data() + (static_cast<size_t>(li) * kSide + y) * kSide;
    const uint8_t* r = s.images.data.data() + (static_cast<size_t>(ri) * kSide + y) * kSide;
    const auto row = static_cast<ptrdiff_t>(y + kTop) * kCanvas;
    std::copy(l, l + kSide, canvas.begin() + row);
    std::copy(r, r + kSide, canvas.begin() + row + kSide);
  }
  Made m;
  m.png = encode_png(canvas.data(), kCanvas, kCanvas, 1);
  if (plan.every_pair_once) {  // CLIP_benchmark retrieval: every phrasing, one a line
    for (int variant = 0; variant < 4; ++variant) {
      m.caption += pair_caption(left, right, variant) + "\n";
    }
  } else {
    m.caption = pair_caption(left, right, static_cast<int>(rng.below(4)));
  }
  m.cls = left * kClasses + right;
  const auto& names = fashion_mnist_classes();
  m.json = {{"label", m.cls},
            {"left", names[static_cast<size_t>(left)]},
            {"right", names[static_cast<size_t>(right)]},
            {"left_index", li},
            {"right_index", ri},
            {"heldout_pair", is_heldout_pair(left, right)}};
  return m;
}

std::string padded(int64_t index) {
  std::string s = std::to_string(index);
  return std::string(6 - std::min<size_t>(6, s.size()), '0') + s;
}

std::string shard_name(const SplitPlan& plan, int64_t shard) {
  return plan.clip_benchmark ? std::to_string(shard) : padded(shard);
}

std::string shard_pattern(const SplitPlan& plan, int64_t shards) {
  if (shards == 1) {
    return shard_name(plan, 0) + ".tar";
  }
  return "{" + shard_name(plan, 0) + ".." + shard_name(plan, shards - 1) + "}.tar";
}

void write_lines(const std::string& path, const std::vector<std::string>& lines) {
  std::ofstream out(path);
  DUET_CHECK(out.good(), "cannot write '{}'", path);
  for (const auto& l : lines) {
    out << l << "\n";
  }
  DUET_CHECK(out.good(), "cannot write '{}'", path);
}

}  // namespace

const std::vector<std::string>& fashion_mnist_classes() {
  static const std::vector<std::string> kNames = {"t-shirt", "trouser",   "pullover", "dress",
                                                  "coat",    "sandal",    "shirt",    "sneaker",
                                                  "bag",     "ankle boot"};
  return kNames;
}

const std::vector<std::string>& fashion_mnist_templates() {
  static const std::vector<std::string> kTemplates = {
      "a photo of a {}.",
      "a black and white photo of a {}.",
      "a low resolution photo of a {}.",
      "a photo of the {}, a type of clothing.",
      "a cropped photo of a {}.",
      "a grayscale image of a {}.",
      "a close-up photo of the {}.",
      "a product photo of a {}.",
  };
  return kTemplates;
}

bool is_heldout_pair(int left, int right) { return right == (left + kHeldoutShift) % kClasses; }

std::string pair_caption(int left, int right, int variant) {
  const std::string l = with_article(fashion_mnist_classes()[static_cast<size_t>(left)]);
  const std::string r = with_article(fashion_mnist_classes()[static_cast<size_t>(right)]);
  switch (((variant % 4) + 4) % 4) {
    case 0:
      return l + " to the left of " + r + ".";
    case 1:
      return r + " to the right of " + l + ".";
    case 2:
      return l + " on the left and " + r + " on the right.";
    default:
      return "a photo of " + l + " and " + r + ", from left to right.";
  }
}

namespace {

std::vector<SplitPlan> plan_splits(const std::string& layout, const IdxSplit& train,
                                   const IdxSplit& test) {
  std::vector<SplitPlan> plans;
  if (layout == "single") {
    plans.push_back({"train", &train, train.labels.shape[0], false, false, 1, false, false});
    plans.push_back({"test", &test, test.labels.shape[0], false, false, 2, true, false});
  } else {
    plans.push_back({"train", &train, 60000, true, false, 11, false, false});
    plans.push_back({"test", &test, 5000, true, false, 12, true, false});
    plans.push_back({"heldout", &test, 5000, true, true, 13, true, false});
    const int64_t pairs = kClasses * (kClasses - 1);
    plans.push_back({"retrieval/test", &test, pairs, true, false, 14, true, true});
  }
  return plans;
}

// One shard of one split: a unit of work for the writer threads.
struct ShardJob {
  const SplitPlan* plan;
  int64_t shard;
  std::string path;
};

void write_shard(const ShardJob& job, int64_t shard_size, uint64_t seed) {
  TarWriter tar(job.path);
  const int64_t begin = job.shard * shard_size;
  const int64_t end = std::min(job.plan->samples, begin + shard_size);
  for (int64_t i = begin; i < end; ++i) {
    const Made m =
        job.plan->pairs ? make_pair(*job.plan, i, seed) : make_single(*job.plan, i, seed);
    const std::string key = padded(i);
    tar.add(key + ".png", m.png);
    tar.add(key + ".txt", m.caption);
    tar.add(key + ".cls", std::to_string(m.cls));
    if (job.plan->pairs) {  // which garment is where; single images need only .cls
      tar.add(key + ".json", m.json.dump());
    }
  }
  tar.close();
}

// Runs every job on `threads` threads; the first exception is rethrown once all have stopped.
void run_jobs(const std::vector<ShardJob>& jobs, int threads, int64_t shard_size, uint64_t seed) {
  std::atomic<size_t> next_job{0};
  std::exception_ptr error;
  std::mutex error_mu;
  auto work = [&] {
    try {
      for (size_t j = next_job++; j < jobs.size(); j = next_job++) {
        write_shard(jobs[j], shard_size, seed);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mu);
      if (!error) {
        error = std::current_exception();
      }
      next_job = jobs.size();
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) {
    pool.emplace_back(work);
  }
  work();
  for (auto& t : pool) {
    t.join();
  }
  if (error) {
    std::rethrow_exception(error);
  }
}

// "{}" templates as CLIP_benchmark's "{c}" ones.
std::vector<std::string> benchmark_templates(const std::vector<std::string>& templates) {
  std::vector<std::string> out;
  for (const auto& t : templates) {
    out.push_back(fill_template(t, "{c}"));
  }
  return out;
}

// classnames.txt, templates.txt (duet's "{}"), captions.txt, and CLIP_benchmark's
// zeroshot_classification_templates.txt ("{c}") and dataset_type.txt. The pairs layout's
// classes are its 100 ordered pairs (index 10 * left + right), named by their first phrasing,
// and its retrieval variant gets a dataset_type.txt of its own.
void write_metadata(const fs::path& out, const std::string& layout, FashionMnistSummary& summary) {
  std::vector<std::string> classnames = fashion_mnist_classes();
  std::vector<std::string> templates = fashion_mnist_templates();
  if (layout == "pairs") {
    classnames.clear();
    for (int left = 0; left < kClasses; ++left) {
      for (int right = 0; right < kClasses; ++right) {
        const std::string caption = pair_caption(left, right, 0);
        classnames.push_back(caption.substr(0, caption.size() - 1));  // without the full stop
      }
    }
    templates = {"{}."};
    write_lines((out / "retrieval" / "dataset_type.txt").string(), {"retrieval"});
  }
  // captions.txt: every distinct training caption, for training a tokenizer on them.
  std::vector<std::string> captions;
  if (layout == "pairs") {
    for (int64_t i = 0; i < kClasses * (kClasses - 1); ++i) {
      const auto [left, right] = distinct_pair(i);
      for (int variant = 0; variant < 4 && !is_heldout_pair(left, right); ++variant) {
        captions.push_back(pair_caption(left, right, variant));
      }
    }
  } else {
    for (const auto& t : templates) {
      for (const auto& c : classnames) {
        captions.push_back(fill_template(t, c));
      }
    }
  }
  write_lines((out / "captions.txt").string(), captions);
  summary.classnames = (out / "classnames.txt").string();
  summary.templates = (out / "templates.txt").string();
  write_lines(summary.classnames, classnames);
  write_lines(summary.templates, templates);
  write_lines((out / "zeroshot_classification_templates.txt").string(),
              benchmark_templates(templates));
  write_lines((out / "dataset_type.txt").string(), {"classification"});
}

void write_manifest(const fs::path& out, const FashionMnistOptions& options,
                    const FashionMnistSummary& summary) {
  nlohmann::json manifest;
  manifest["layout"] = options.layout;
  manifest["seed"] = options.seed;
  manifest["classnames"] = summary.classnames;
  manifest["templates"] = summary.templates;
  if (options.layout == "pairs") {
    std::vector<std::string> heldout;
    for (int c = 0; c < kClasses; ++c) {
      heldout.push_back(pair_caption(c, (c + kHeldoutShift) % kClasses, 0));
    }
    manifest["heldout_pairs"] = heldout;
  }
  for (const auto& [name, s] : summary.splits) {
    manifest["splits"][name] = {
        {"pattern", s.pattern}, {"samples", s.samples}, {"shards", s.shards}};
  }
  std::ofstream json_out(out / "dataset.json");
  json_out << manifest.dump(2) << "\n";
  DUET_CHECK(json_out.good(), "cannot write '{}'", (out / "dataset.json").string());
}

}  // namespace

FashionMnistSummary write_fashion_mnist(const FashionMnistOptions& options) {
  DUET_CHECK(!options.out_dir.empty(), "fashion-mnist: an output directory is required");
  DUET_CHECK(options.layout == "single" || options.layout == "pairs",
             "fashion-mnist: layout must be 'single' or 'pairs', got '{}'", options.layout);
  DUET_CHECK(options.shard_size > 0, "fashion-mnist: shard size must be positive");
  const IdxSplit train = load_split(options.idx_dir, "train");
  const IdxSplit test = load_split(options.idx_dir, "t10k");
  const std::vector<SplitPlan> plans = plan_splits(options.layout, train, test);

  std::vector<ShardJob> jobs;
  FashionMnistSummary summary;
  const fs::path out(options.out_dir);
  for (const SplitPlan& plan : plans) {
    const fs::path dir = out / plan.name;
    fs::create_directories(dir);
    for (const auto& entry : fs::directory_iterator(dir)) {  // shards of an earlier layout
      if (entry.path().extension() == ".tar") {
        fs::remove(entry.path());
      }
    }
    const int64_t shards = (plan.samples + options.shard_size - 1) / options.shard_size;
    for (int64_t k = 0; k < shards; ++k) {
      jobs.push_back({&plan, k, (dir / (shard_name(plan, k) + ".tar")).string()});
    }
    if (plan.clip_benchmark) {
      write_lines((dir / "nshards.txt").string(), {std::to_string(shards)});
    }
    SplitSummary& s = summary.splits[plan.name];
    s.samples = plan.samples;
    s.shards = shards;
    s.pattern = dir.string() + "/" + shard_pattern(plan, shards);
  }
  const int threads =
      std::max(1, options.threads > 0 ? options.threads
                                      : static_cast<int>(std::thread::hardware_concurrency()));
  run_jobs(jobs, threads, options.shard_size, options.seed);
  write_metadata(out, options.layout, summary);
  write_manifest(out, options, summary);
  log::get("data")->info("fashion-mnist ({}): wrote {} shards to {}", options.layout, jobs.size(),
                         options.out_dir);
  return summary;
}

}  // namespace duet::data
