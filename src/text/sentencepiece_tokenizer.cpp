// SentencePiece loading and training (see sentencepiece_tokenizer.h). The library reports
// failures as util::Status; they become duet Errors that name the file and carry its message.
// Its own logging goes to stderr, so training runs it at warning level unless duet's text
// logger is at debug or trace.
#include "text/sentencepiece_tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <thread>
#include <unordered_map>

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include "common/error.h"
#include "common/logging.h"

namespace duet::text {

namespace fs = std::filesystem;

namespace {

// Checks that a file exists and holds something; `what` names it in messages.
void check_nonempty_file(const std::string& path, const std::string& what) {
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (status.type() == fs::file_type::not_found) {
    fail("{}'{}' does not exist", what, path);
  }
  if (ec) {
    fail("{}'{}' cannot be read: {}", what, path, ec.message());
  }
  if (!fs::is_regular_file(status)) {
    fail("{}'{}' is not a regular file", what, path);
  }
  if (fs::file_size(path, ec) == 0 && !ec) {
    fail("{}'{}' is empty", what, path);
  }
}

// Captions streamed from a file, one per line (a trailing '\r' dropped). Passing the path as
// the trainer's `input` would split it at commas.
class FileIterator : public sentencepiece::SentenceIterator {
 public:
  explicit FileIterator(const std::string& path) : path_(path), in_(path, std::ios::binary) {
    Next();
  }
  bool done() const override { return done_; }
  void Next() override {
    done_ = !std::getline(in_, line_);
    if (!done_ && !line_.empty() && line_.back() == '\r') {
      line_.pop_back();
    }
  }
  const std::string& value() const override { return line_; }
  sentencepiece::util::Status status() const override {
    if (in_.bad() || (in_.fail() && !in_.eof())) {
      return sentencepiece::util::Status(sentencepiece::util::StatusCode::kDataLoss,
                                         "cannot read '" + path_ + "'");
    }
    return {};
  }

 private:
  std::string path_;
  std::ifstream in_;
  std::string line_;
  bool done_ = false;
};

// Captions held in memory by the caller.
class CaptionIterator : public sentencepiece::SentenceIterator {
 public:
  explicit CaptionIterator(const std::vector<std::string>& captions) : captions_(captions) {}
  bool done() const override { return index_ >= captions_.size(); }
  void Next() override { ++index_; }
  const std::string& value() const override { return captions_[index_]; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  const std::vector<std::string>& captions_;
  size_t index_ = 0;
};

std::unordered_map<std::string, std::string> trainer_arguments(
    int64_t vocab_size, const std::string& model_prefix, const SentencePieceTrainOptions& options) {
  if (vocab_size <= kSentencePieceEosId + 1) {
    fail(ErrorKind::kUsage,
         "SentencePiece vocabulary size {} is too small: ids 0-3 are reserved for pad, unk, bos "
         "and eos",
         vocab_size);
  }
  const int64_t threads = options.threads > 0
                              ? options.threads
                              : std::max<int64_t>(1, std::thread::hardware_concurrency());
  const bool verbose = log::get("text")->should_log(spdlog::level::debug);
  return {
      {"model_prefix", model_prefix},
      {"vocab_size", std::to_string(vocab_size)},
      {"model_type", options.model_type},
      {"character_coverage", std::to_string(options.character_coverage)},
      {"normalization_rule_name", options.normalization},
      {"input_sentence_size", std::to_string(options.max_sentences)},
      {"shuffle_input_sentence", "true"},
      {"num_threads", std::to_string(threads)},
      {"pad_id", std::to_string(kSentencePiecePadId)},
      {"unk_id", std::to_string(kSentencePieceUnkId)},
      {"bos_id", std::to_string(kSentencePieceBosId)},
      {"eos_id", std::to_string(kSentencePieceEosId)},
      {"minloglevel", verbose ? "0" : "1"},
  };
}

std::string train(const std::unordered_map<std::string, std::string>& arguments,
                  sentencepiece::SentenceIterator* captions, const std::string& source,
                  const std::string& model_prefix) {
  const fs::path directory = fs::path(model_prefix).parent_path();
  std::error_code ec;
  if (!directory.empty() && !fs::create_directories(directory, ec) && ec) {
    fail("cannot create the directory '{}' for the SentencePiece model: {}", directory.string(),
         ec.message());
  }
  log::get("text")->info("training a SentencePiece {} model with {} ids on {}",
                         arguments.at("model_type"), arguments.at("vocab_size"), source);
  const auto status = sentencepiece::SentencePieceTrainer::Train(arguments, captions);
  if (!status.ok()) {
    fail("training a SentencePiece model on {} failed: {}", source, status.ToString());
  }
  const std::string model = model_prefix + ".model";
  log::get("text")->info("wrote {} and {}.vocab", model, model_prefix);
  return model;
}

}  // namespace

SentencePieceTokenizer::SentencePieceTokenizer(const std::string& model_path)
    : processor_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {
  check_nonempty_file(model_path, "tokenizer.path: the SentencePiece model ");
  const auto status = processor_->Load(model_path);
  if (!status.ok()) {
    fail(
        "tokenizer.path: '{}' is not a valid SentencePiece model ({}); expected a .model file "
        "such as `duet tokenizer train` writes",
        model_path, status.ToString());
  }
  if (processor_->eos_id() < 0) {
    fail(
        "tokenizer.path: the SentencePiece model '{}' has no eos piece; duet ends every "
        "caption with it (train with eos_id set, as `duet tokenizer train` does)",
        model_path);
  }
  info_.vocab_size = processor_->GetPieceSize();
  info_.sot_id = processor_->bos_id();
  info_.eot_id = processor_->eos_id();
  info_.pad_id = std::max(processor_->pad_id(), 0);
  info_.unk_id = processor_->unk_id();
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

std::string SentencePieceTokenizer::serialized_model() const {
  return processor_->serialized_model_proto();
}

std::vector<int64_t> SentencePieceTokenizer::encode(const std::string& text) const {
  std::vector<int> ids;
  const auto status = processor_->Encode(text, &ids);
  DUET_CHECK(status.ok(), "SentencePiece could not encode '{}': {}", text, status.ToString());
  return std::vector<int64_t>(ids.begin(), ids.end());
}

std::string SentencePieceTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::vector<int> narrow;
  narrow.reserve(ids.size());
  for (int64_t id : ids) {
    DUET_CHECK(id >= 0 && id < info_.vocab_size,
               "cannot decode token id {}: the SentencePiece vocabulary has ids 0..{}", id,
               info_.vocab_size - 1);
    narrow.push_back(static_cast<int>(id));
  }
  std::string text;
  const auto status = processor_->Decode(narrow, &text);
  DUET_CHECK(status.ok(), "SentencePiece could not decode: {}", status.ToString());
  return text;
}

std::string train_sentencepiece(const std::string& input_file, int64_t vocab_size,
                                const std::string& model_prefix,
                                const SentencePieceTrainOptions& options) {
  check_nonempty_file(input_file, "the caption file ");
  FileIterator iterator(input_file);
  return train(trainer_arguments(vocab_size, model_prefix, options), &iterator,
               "'" + input_file + "'", model_prefix);
}

std::string train_sentencepiece(const std::vector<std::string>& captions, int64_t vocab_size,
                                const std::string& model_prefix,
                                const SentencePieceTrainOptions& options) {
  if (captions.empty()) {
    fail("cannot train a SentencePiece model without captions");
  }
  CaptionIterator iterator(captions);
  return train(trainer_arguments(vocab_size, model_prefix, options), &iterator,
               std::to_string(captions.size()) + " captions", model_prefix);
}

}  // namespace duet::text
