// The loader (see loader.h). One epoch is an EpochRun. Without workers it pulls raw samples and
// processes them on the calling thread. With workers it runs
//   reader thread  -> task queue (raw samples tagged with their stream index)
//   worker threads -> results keyed by stream index
//   collator thread -> takes results in index order, builds batches -> bounded batch queue
// and next() pops the batch queue. Both paths share pull-in-order + build_batch, so they give
// the same batches. The first exception on any thread stops the run and is rethrown by next().
#include "data/loader.h"

#include <sched.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

#include "common/error.h"
#include "common/logging.h"
#include "data/rng.h"
#include "data/sample_processor.h"
#include "data/sample_stream.h"
#include "data/skip_stats.h"
#include "data/source_set.h"

namespace duet::data {
namespace {

constexpr uint64_t kSampleTag = 0x5a3e;
constexpr int kStateVersion = 1;

// A batch plus the stream index just past its last sample (the resume position).
struct BatchItem {
  Batch batch;
  int64_t end_seq = 0;
};

// One result in stream order, or the end of the stream.
struct Pulled {
  int64_t seq = 0;
  int source = 0;
  int64_t pass_index = 0;  // RawSample::pass_index / pass_size
  int64_t pass_size = 0;
  ProcessResult result;
};

}  // namespace

struct Loader::Impl {
  config::DataConfig data;
  LoaderOptions options;
  ProcessOptions process;
  std::shared_ptr<const SourceSet> sources;
  std::vector<int64_t> shard_counts;  // only with world_size > 1
  bool by_shard = true;
  SkipStats skips;

  // Position: the next batch is batch `batches` of `epoch` and starts at stream index
  // `next_seq`.
  int64_t epoch = 0;
  int64_t batches = 0;
  int64_t next_seq = 0;

  // Totals for stats().
  int64_t total_samples = 0;
  int64_t total_batches = 0;
  std::optional<std::chrono::steady_clock::time_point> started;

  class EpochRun;
  std::unique_ptr<EpochRun> run;

  StreamPlan plan(int64_t for_epoch) const {
    StreamPlan p;
    p.seed = options.seed;
    p.epoch = for_epoch;
    p.rank = options.rank;
    p.world_size = options.world_size;
    p.by_shard = by_shard;
    p.shuffle = options.mode == LoaderMode::kTrain && data.shuffle_buffer > 0;
    p.shuffle_buffer = data.shuffle_buffer;
    p.repeat = options.mode == LoaderMode::kTrain && options.world_size > 1;
    return p;
  }

  // Training batches per epoch when every rank must produce the same number.
  std::optional<int64_t> batch_limit(int64_t for_epoch) const {
    if (options.world_size == 1 || options.mode != LoaderMode::kTrain) {
      return std::nullopt;
    }
    const std::vector<int64_t> per_rank = rank_sample_counts(shard_counts, plan(for_epoch));
    int64_t fewest = per_rank[0];
    for (int64_t n : per_rank) {
      fewest = std::min(fewest, n);
    }
    return fewest / options.batch_size;
  }

  uint64_t sample_seed(int64_t seq) const {
    return mix_seed({options.seed, static_cast<uint64_t>(epoch),
                     static_cast<uint64_t>(options.rank), static_cast<uint64_t>(seq), kSampleTag});
  }

  std::string source_list() const {
    std::string s;
    for (const auto& n : sources->names) {
      s += (s.empty() ? "'" : ", '") + n + "'";
    }
    return s;
  }
};

// One epoch from a start position.
class Loader::Impl::EpochRun {
 public:
  EpochRun(Impl& impl, int64_t start_seq, int64_t start_batches)
      : impl_(impl),
        stream_(impl.sources, impl.plan(impl.epoch)),
        limit_(impl.batch_limit(impl.epoch)),
        batches_made_(start_batches),
        valid_per_source_(impl.sources->names.size(), 0),
        raw_per_source_(impl.sources->names.size(), 0) {
    if (impl_.data.workers > 0) {
      start_threads(start_seq);
    } else {
      skip_to(start_seq);
    }
  }

  ~EpochRun() { stop_threads(); }

  // The next batch, or nullopt at the end of the epoch. Rethrows failures of the threads.
  std::optional<BatchItem> next() {
    if (impl_.data.workers == 0) {
      return build_batch([this] { return pull_sync(); });
    }
    std::unique_lock<std::mutex> lock(mu_);
    cv_batch_.wait(lock, [this] { return !queue_.empty() || error_ || collator_done_; });
    if (queue_.empty()) {  // batches made before a failure are still handed out first
      if (error_) {
        std::rethrow_exception(error_);
      }
      return std::nullopt;
    }
    std::optional<BatchItem> item = std::move(queue_.front());
    queue_.pop_front();
    cv_space_.notify_all();
    return item;
  }

 private:
  // ---- shared by both paths -------------------------------------------------------------

  // Builds the next batch from results pulled in stream order; nullopt at the epoch's end.
  std::optional<BatchItem> build_batch(const std::function<std::optional<Pulled>()>& pull) {
    const int64_t size = impl_.options.batch_size;
    if (limit_ && batches_made_ >= *limit_) {
      return std::nullopt;
    }
    std::vector<ProcessedSample> samples;
    samples.reserve(static_cast<size_t>(size));
    int64_t end_seq = seq_;
    while (static_cast<int64_t>(samples.size()) < size) {
      std::optional<Pulled> p = pull();
      if (!p) {
        break;
      }
      end_seq = p->seq + 1;
      ++raw_per_source_[static_cast<size_t>(p->source)];
      if (!p->result.ok) {
        impl_.skips.record(
            p->result.reason,
            p->result.sample.where.empty() ? std::string("sample") : p->result.sample.where,
            p->result.detail);
        check_not_all_bad(*p);
        continue;
      }
      found_valid_ = true;
      bad_positions_.clear();
      ++valid_per_source_[static_cast<size_t>(p->source)];
      samples.push_back(std::move(p->result.sample));
    }
    const bool full = static_cast<int64_t>(samples.size()) == size;
    if (!full) {
      end_of_stream_checks();
      if (samples.empty() || impl_.options.mode == LoaderMode::kTrain) {
        return std::nullopt;  // training drops the last partial batch
      }
    }
    ++batches_made_;
    BatchItem item;
    item.end_seq = end_seq;
    item.batch = collate(samples);
    return item;
  }

  Batch collate(std::vector<ProcessedSample>& samples) const {
    const auto n = static_cast<int64_t>(samples.size());
    const int64_t s = impl_.options.image_size;
    Batch b;
    const auto pinned = torch::TensorOptions().pinned_memory(impl_.options.pin_memory);
    b.images = torch::empty({n, 3, s, s}, pinned.dtype(torch::kFloat32));
    b.labels = torch::empty({n}, torch::kInt64);
    const bool tokens = impl_.options.tokenizer != nullptr;
    const int64_t l = impl_.options.context_length;
    if (tokens) {
      b.tokens = torch::empty({n, l}, pinned.dtype(torch::kInt64));
    }
    float* images = b.images.data_ptr<float>();
    int64_t* labels = b.labels.data_ptr<int64_t>();
    const size_t image_floats = static_cast<size_t>(3 * s * s);
    for (int64_t i = 0; i < n; ++i) {
      ProcessedSample& sample = samples[static_cast<size_t>(i)];
      std::memcpy(images + i * image_floats, sample.image.data(), image_floats * sizeof(float));
      labels[i] = sample.label;
      if (tokens) {
        DUET_CHECK(static_cast<int64_t>(sample.tokens.size()) == l,
                   "tokenizer returned {} ids for context length {}", sample.tokens.size(), l);
        std::memcpy(b.tokens.data_ptr<int64_t>() + i * l, sample.tokens.data(),
                    static_cast<size_t>(l) * sizeof(int64_t));
      }
      b.captions.push_back(std::move(sample.caption));
      b.keys.push_back(std::move(sample.where));
    }
    return b;
  }

  // While the stream repeats this rank's part (training with several ranks) it never ends, so a
  // part without any valid sample would loop for ever. Every pass yields the same samples, so
  // once each position of a pass has been skipped, and no sample has been valid, nothing ever
  // will be. Counting skips in a row is not enough: the shuffle buffer mixes passes, so a part
  // with few valid samples can legitimately give more skips in a row than it has samples.
  void check_not_all_bad(const Pulled& p) {
    if (!limit_ || found_valid_) {
      return;
    }
    const auto position = static_cast<size_t>(p.pass_index);
    if (position >= bad_positions_.size()) {
      bad_positions_.resize(position + 1, false);
    }
    if (!bad_positions_[position]) {
      bad_positions_[position] = true;
      ++bad_count_;
    }
    if (p.pass_size > 0) {
      pass_size_ = p.pass_size;
    }
    DUET_CHECK(pass_size_ == 0 || bad_count_ < pass_size_,
               "rank {} of {} found no valid sample in its part of data sources {} ({} samples, "
               "all skipped; run `duet data inspect` on them)",
               impl_.options.rank, impl_.options.world_size, impl_.source_list(), pass_size_);
  }

  void end_of_stream_checks() const {
    if (seq_started_ > 0) {
      return;  // resumed mid-epoch: the earlier part of the epoch is not counted here
    }
    if (impl_.options.world_size > 1) {
      // A rank sees only its part, which may hold just a few samples of a source, all of them
      // bad, while other ranks have its valid ones: a per-source verdict needs every rank's
      // counts. (In training a part without any valid sample is caught by check_not_all_bad.)
      return;
    }
    for (size_t i = 0; i < raw_per_source_.size(); ++i) {
      DUET_CHECK(valid_per_source_[i] > 0,
                 "data source '{}' yielded no valid sample ({} read, {} skipped in total so "
                 "far; run `duet data inspect` on it)",
                 impl_.sources->names[i], raw_per_source_[i], impl_.skips.total());
    }
  }

  // ---- without workers ------------------------------------------------------------------

  void skip_to(int64_t start_seq) {
    seq_started_ = start_seq;
    while (seq_ < start_seq && stream_.next()) {
      ++seq_;
    }
  }

  std::optional<Pulled> pull_sync() {
    std::optional<RawSample> raw = stream_.next();
    if (!raw) {
      return std::nullopt;
    }
    Pulled p;
    p.seq = seq_++;
    p.source = raw->source;
    p.pass_index = raw->pass_index;
    p.pass_size = raw->pass_size;
    std::string where = raw->where;
    p.result = process_sample(std::move(*raw), impl_.process, impl_.sample_seed(p.seq));
    if (!p.result.ok) {
      p.result.sample.where = std::move(where);
    }
    return p;
  }

  // ---- with workers -----------------------------------------------------------------------

  void start_threads(int64_t start_seq) {
    seq_started_ = start_seq;
    seq_ = start_seq;
    window_ = impl_.options.batch_size + 4 * impl_.data.workers;
    produced_ = seq_;
    // Set before any thread starts: the reader's window check reads it, and a resumed run starts
    // far from 0 (a consumed_ of 0 would hold the reader back forever).
    consumed_ = start_seq;
    threads_.emplace_back([this] { guarded([this] { reader(); }); });
    for (int64_t i = 0; i < impl_.data.workers; ++i) {
      threads_.emplace_back([this] { guarded([this] { worker(); }); });
    }
    threads_.emplace_back([this] { guarded([this] { collator(); }); });
  }

  void stop_threads() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    notify_all();
    for (auto& t : threads_) {
      t.join();
    }
    threads_.clear();
  }

  void notify_all() {
    cv_task_.notify_all();
    cv_result_.notify_all();
    cv_space_.notify_all();
    cv_batch_.notify_all();
  }

  void guarded(const std::function<void()>& body) {
    try {
      body();
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!error_) {
        error_ = std::current_exception();
      }
      stop_ = true;
      notify_all();
    }
  }

  void reader() {
    // Replay up to the start position without decoding anything.
    for (int64_t i = 0; i < seq_started_; ++i) {
      if (!stream_.next() || stopping()) {
        break;
      }
    }
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_space_.wait(lock, [this] { return stop_ || produced_ - consumed_ < window_; });
        if (stop_) {
          return;
        }
      }
      std::optional<RawSample> raw = stream_.next();
      std::lock_guard<std::mutex> lock(mu_);
      if (!raw) {
        reader_done_ = true;
        cv_task_.notify_all();
        cv_result_.notify_all();
        return;
      }
      tasks_.emplace_back(produced_++, std::move(*raw));
      cv_task_.notify_one();
    }
  }

  void worker() {
    for (;;) {
      std::pair<int64_t, RawSample> task;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_task_.wait(lock, [this] { return stop_ || !tasks_.empty() || reader_done_; });
        if (stop_ || tasks_.empty()) {
          return;
        }
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      Pulled p;
      p.seq = task.first;
      p.source = task.second.source;
      p.pass_index = task.second.pass_index;
      p.pass_size = task.second.pass_size;
      std::string where = task.second.where;
      p.result = process_sample(std::move(task.second), impl_.process, impl_.sample_seed(p.seq));
      if (!p.result.ok) {
        p.result.sample.where = std::move(where);
      }
      std::lock_guard<std::mutex> lock(mu_);
      results_.emplace(p.seq, std::move(p));
      cv_result_.notify_all();
    }
  }

  std::optional<Pulled> pull_threaded() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_result_.wait(lock, [this] {
      return stop_ || results_.count(consumed_) > 0 || (reader_done_ && consumed_ == produced_);
    });
    if (stop_) {
      throw Stopped{};
    }
    auto it = results_.find(consumed_);
    if (it == results_.end()) {
      return std::nullopt;
    }
    Pulled p = std::move(it->second);
    results_.erase(it);
    ++consumed_;
    cv_space_.notify_all();
    return p;
  }

  void collator() {
    seq_ = seq_started_;
    try {
      for (;;) {
        std::optional<BatchItem> item = build_batch([this] { return pull_threaded(); });
        std::unique_lock<std::mutex> lock(mu_);
        if (!item) {
          collator_done_ = true;
          stop_ = true;  // the reader and workers are not needed any more
          notify_all();
          return;
        }
        cv_space_.wait(lock, [this] {
          return stop_ || static_cast<int64_t>(queue_.size()) < impl_.data.prefetch;
        });
        if (stop_) {
          return;
        }
        queue_.push_back(std::move(*item));
        cv_batch_.notify_all();
      }
    } catch (const Stopped&) {
    }
  }

  bool stopping() {
    std::lock_guard<std::mutex> lock(mu_);
    return stop_;
  }

  struct Stopped {};

  Impl& impl_;
  SampleStream stream_;
  std::optional<int64_t> limit_;
  int64_t batches_made_ = 0;
  int64_t seq_ = 0;          // next stream index (sync path, and the collator's start)
  int64_t seq_started_ = 0;  // where this run started
  // check_not_all_bad: positions of the pass skipped so far, while no sample has been valid.
  bool found_valid_ = false;
  std::vector<bool> bad_positions_;
  int64_t bad_count_ = 0;
  int64_t pass_size_ = 0;
  std::vector<int64_t> valid_per_source_;
  std::vector<int64_t> raw_per_source_;

  std::mutex mu_;
  std::condition_variable cv_task_;    // tasks available / reader done / stop
  std::condition_variable cv_result_;  // a result arrived / reader done / stop
  std::condition_variable cv_space_;   // window or batch queue has room / stop
  std::condition_variable cv_batch_;   // a batch is queued / collator done / error
  std::vector<std::thread> threads_;
  std::deque<std::pair<int64_t, RawSample>> tasks_;
  std::map<int64_t, Pulled> results_;
  std::deque<BatchItem> queue_;
  int64_t window_ = 0;
  int64_t produced_ = 0;  // stream indices handed to the workers
  int64_t consumed_ = 0;  // stream indices taken by the collator
  bool reader_done_ = false;
  bool collator_done_ = false;
  bool stop_ = false;
  std::exception_ptr error_;
};

int64_t resolve_workers(int64_t requested, int ranks_on_node, int64_t cores) {
  if (requested >= 0) {
    return requested;
  }
  const int64_t share = std::max<int64_t>(1, cores) / std::max(1, ranks_on_node);
  return std::clamp<int64_t>(share, 1, 32);
}

int64_t resolve_workers(int64_t requested, int ranks_on_node) {
  cpu_set_t set;
  CPU_ZERO(&set);
  int64_t cores = 0;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    cores = CPU_COUNT(&set);
  }
  if (cores <= 0) {
    cores = std::max<int64_t>(1, std::thread::hardware_concurrency());
  }
  return resolve_workers(requested, ranks_on_node, cores);
}

Loader::Loader(const config::DataConfig& data, LoaderOptions options)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.data = data;
  m.options = std::move(options);
  const LoaderOptions& o = m.options;
  DUET_CHECK(o.batch_size > 0, "loader batch size must be positive, got {}", o.batch_size);
  DUET_CHECK(o.image_size > 0, "loader image size must be positive, got {}", o.image_size);
  DUET_CHECK(o.world_size >= 1 && o.rank >= 0 && o.rank < o.world_size,
             "bad rank {} for world size {}", o.rank, o.world_size);
  DUET_CHECK(
      data.rrc_scale.size() == 2 && data.rrc_scale[0] <= data.rrc_scale[1] && data.rrc_scale[0] > 0,
      "data.rrc_scale must be [min, max] with 0 < min <= max <= 1, got {} values",
      data.rrc_scale.size());
  DUET_CHECK(data.mean.size() == 3 && data.stddev.size() == 3,
             "data.mean and data.std need 3 values (RGB), got {} and {}", data.mean.size(),
             data.stddev.size());
  DUET_CHECK(data.workers >= -1 && data.prefetch >= 1,
             "data.workers must be -1 (one per core), 0 or more, and data.prefetch >= 1; got {} "
             "and {}",
             data.workers, data.prefetch);
  m.data.workers = resolve_workers(data.workers, o.ranks_on_node);

  CsvOptions csv;
  csv.separator = data.csv_separator;
  csv.img_key = data.csv_img_key;
  csv.caption_key = data.csv_caption_key;
  m.sources = std::make_shared<const SourceSet>(resolve_sources(o.sources, csv));
  m.by_shard = static_cast<int64_t>(m.sources->shards.size()) >= o.world_size;

  ProcessOptions& p = m.process;
  p.image_size = static_cast<int>(o.image_size);
  p.train = o.mode == LoaderMode::kTrain;
  p.scale_min = data.rrc_scale[0];
  p.scale_max = data.rrc_scale[1];
  p.hflip = data.hflip;
  for (int c = 0; c < 3; ++c) {
    DUET_CHECK(data.stddev[c] > 0, "data.std values must be positive");
    p.norm.mean[c] = static_cast<float>(data.mean[c]);
    p.norm.std[c] = static_cast<float>(data.stddev[c]);
  }
  p.jpeg_dct_scaling = p.train && o.jpeg_dct_scaling;
  p.need_caption = o.require_captions;
  p.need_label = o.require_labels;
  p.tokenizer = o.tokenizer;
  p.context_length = o.context_length;

  if (o.world_size > 1) {
    m.shard_counts = count_samples(*m.sources);
    const std::vector<int64_t> per_rank = rank_sample_counts(m.shard_counts, m.plan(0));
    const int64_t need = o.mode == LoaderMode::kTrain ? o.batch_size : 1;
    for (int r = 0; r < o.world_size; ++r) {
      DUET_CHECK(per_rank[static_cast<size_t>(r)] >= need,
                 "rank {} of {} would get {} samples (needs at least {}) from data sources {} "
                 "({} shards, split by {}); use fewer ranks, a smaller batch or more data",
                 r, o.world_size, per_rank[static_cast<size_t>(r)], need, m.source_list(),
                 m.sources->shards.size(), m.by_shard ? "shard" : "sample");
    }
  }
  log::get("data")->debug("loader: {} shards from {}, split by {}, {} workers",
                          m.sources->shards.size(), m.source_list(),
                          m.by_shard ? "shard" : "sample", m.data.workers);
}

Loader::~Loader() = default;

std::optional<Batch> Loader::next() {
  Impl& m = *impl_;
  if (!m.started) {
    m.started = std::chrono::steady_clock::now();
  }
  if (!m.run) {
    m.run = std::make_unique<Impl::EpochRun>(m, m.next_seq, m.batches);
  }
  std::optional<BatchItem> item = m.run->next();
  if (!item) {
    m.run.reset();
    DUET_CHECK(m.batches > 0 || m.next_seq > 0,
               "epoch {} of data sources {} produced no batch of {} samples ({} skipped)", m.epoch,
               m.source_list(), m.options.batch_size, m.skips.total());
    ++m.epoch;
    m.batches = 0;
    m.next_seq = 0;
    return std::nullopt;
  }
  ++m.batches;
  m.next_seq = item->end_seq;
  ++m.total_batches;
  m.total_samples += item->batch.size();
  return std::move(item->batch);
}

int64_t Loader::epoch() const { return impl_->epoch; }

int64_t Loader::batches_in_epoch() const { return impl_->batches; }

std::optional<int64_t> Loader::epoch_batches() const { return impl_->batch_limit(impl_->epoch); }

std::string Loader::state() const {
  const Impl& m = *impl_;
  nlohmann::json j;
  j["version"] = kStateVersion;
  j["epoch"] = m.epoch;
  j["batches"] = m.batches;
  j["next_sample"] = m.next_seq;
  j["seed"] = m.options.seed;
  j["batch_size"] = m.options.batch_size;
  j["rank"] = m.options.rank;
  j["world_size"] = m.options.world_size;
  j["sources"] = m.sources->names;
  return j.dump();
}

void Loader::restore(const std::string& state) {
  Impl& m = *impl_;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(state);
    DUET_CHECK(j.value("version", 0) == kStateVersion, "unknown loader state version {}",
               j.value("version", 0));
    auto expect = [&](const char* key, auto mine) {
      const auto theirs = j.at(key).get<decltype(mine)>();
      DUET_CHECK(theirs == mine,
                 "cannot restore the data position: it was saved with {} = {}, this run has {}",
                 key, nlohmann::json(theirs).dump(), nlohmann::json(mine).dump());
    };
    expect("seed", m.options.seed);
    expect("batch_size", m.options.batch_size);
    expect("rank", m.options.rank);
    expect("world_size", m.options.world_size);
    expect("sources", m.sources->names);
    m.run.reset();
    m.epoch = j.at("epoch").get<int64_t>();
    m.batches = j.at("batches").get<int64_t>();
    m.next_seq = j.at("next_sample").get<int64_t>();
    DUET_CHECK(m.epoch >= 0 && m.batches >= 0 && m.next_seq >= 0, "negative loader position");
  } catch (const nlohmann::json::exception& e) {
    fail("corrupt loader state '{}': {}", state, e.what());
  }
}

LoaderStats Loader::stats() const {
  const Impl& m = *impl_;
  LoaderStats s;
  s.samples = m.total_samples;
  s.batches = m.total_batches;
  if (m.started) {
    s.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - *m.started).count();
  }
  s.samples_per_second = s.seconds > 0 ? s.samples / s.seconds : 0.0;
  s.skipped = m.skips.total();
  s.skipped_by_reason = m.skips.by_reason();
  return s;
}

}  // namespace duet::data
