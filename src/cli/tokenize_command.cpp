// `duet tokenize` (token ids of texts, one line each), `duet tokenizer train` (a SentencePiece
// model from a caption file) and `duet tokenizer info` (vocabulary size and special ids).
// The tokenizer comes from a config (-c: tokenizer.*, model.text.context_length) or from
// --tokenizer/--vocab/--context, which also override the config's values.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/app.h"
#include "common/error.h"
#include "config/loader.h"
#include "text/sentencepiece_tokenizer.h"
#include "text/tokenizer.h"

namespace duet::cli {
namespace {

constexpr int64_t kDefaultContextLength = 77;

// Where the tokenizer comes from.
struct TokenizerSource {
  std::string config_file;
  std::vector<std::string> overrides;
  std::string type;   // clip-bpe / clip_bpe / sentencepiece; empty: the config's, else clip_bpe
  std::string vocab;  // empty: the config's tokenizer.path
  int64_t context_length = 0;  // 0: the config's model.text.context_length, else 77
};

void add_source_options(CLI::App* command, TokenizerSource& source) {
  command->add_option("-c,--config", source.config_file,
                      "Config whose tokenizer.* and model.text.context_length are used");
  command->add_option("--set", source.overrides, "Override a config key: KEY=VALUE (repeatable)")
      ->type_name("KEY=VALUE");
  command
      ->add_option("--tokenizer", source.type,
                   "clip-bpe or sentencepiece (default: the config's tokenizer.type, else "
                   "clip-bpe)")
      ->check(CLI::IsMember({"clip-bpe", "clip_bpe", "sentencepiece"}));
  command->add_option("--vocab", source.vocab,
                      "CLIP merges file (bpe_simple_vocab_16e6.txt[.gz]) or SentencePiece .model "
                      "(default: the config's tokenizer.path)");
}

struct Resolved {
  config::TokenizerConfig tokenizer;
  int64_t context_length = kDefaultContextLength;
  bool from_config = false;
  config::TextConfig text;
};

Resolved resolve(const TokenizerSource& source) {
  Resolved r;
  if (!source.config_file.empty()) {
    const config::Config config = load_config(source.config_file, source.overrides);
    r.tokenizer = config.tokenizer;
    r.context_length = config.model.text.context_length;
    r.text = config.model.text;
    r.from_config = true;
  } else if (!source.overrides.empty()) {
    fail(ErrorKind::kUsage, "--set needs a config (-c CONFIG)");
  } else if (source.vocab.empty()) {
    fail(ErrorKind::kUsage,
         "say which tokenizer to use: -c CONFIG, or --vocab PATH (with --tokenizer clip-bpe or "
         "sentencepiece)");
  }
  if (!source.type.empty()) {
    r.tokenizer.type = source.type == "clip-bpe" ? config::TokenizerType::kClipBpe
                                                 : config::TokenizerType::kSentencePiece;
  }
  if (!source.vocab.empty()) {
    r.tokenizer.path = source.vocab;
  }
  if (source.context_length > 0) {
    r.context_length = source.context_length;
  }
  return r;
}

struct TokenizeOptions {
  TokenizerSource source;
  std::vector<std::string> texts;
  bool json = false;
  bool raw = false;
};

void run_tokenize(const TokenizeOptions& options) {
  const Resolved r = resolve(options.source);
  const auto tokenizer = text::make_tokenizer(r.tokenizer);
  auto print = [&](const std::string& text) {
    const std::vector<int64_t> ids =
        options.raw ? tokenizer->encode(text) : tokenizer->tokenize(text, r.context_length);
    if (options.json) {
      std::cout << nlohmann::json(ids).dump() << '\n';
    } else {
      std::cout << fmt::format("{}", fmt::join(ids, " ")) << '\n';
    }
  };
  for (const std::string& text : options.texts) {
    if (text != "-") {
      print(text);
      continue;
    }
    std::string line;
    while (std::getline(std::cin, line)) {
      if (!line.empty() && line.back() == '\r') {
        line.pop_back();
      }
      print(line);
    }
    if (std::cin.bad()) {
      fail("cannot read texts from stdin");
    }
  }
  std::cout.flush();
}

void run_info(const TokenizerSource& source) {
  const Resolved r = resolve(source);
  const text::TokenizerInfo info = text::make_tokenizer(r.tokenizer)->info();
  std::cout << fmt::format(
      "type {}\npath {}\nvocab_size {}\nsot_id {}\neot_id {}\npad_id {}\nunk_id {}\n",
      r.tokenizer.type, r.tokenizer.path, info.vocab_size, info.sot_id, info.eot_id, info.pad_id,
      info.unk_id);
  if (r.from_config) {
    text::check_vocab(info, r.text);  // a mismatch is the config's error: exit 2
  }
}

struct TrainOptions {
  std::string input;
  std::string out;
  int64_t vocab_size = 0;
  text::SentencePieceTrainOptions train;
};

}  // namespace

void add_tokenize_command(CLI::App& root, Registry& registry) {
  auto tokenize_options = std::make_shared<TokenizeOptions>();
  CLI::App* tokenize = root.add_subcommand(
      "tokenize",
      "Print the token ids of each TEXT on one line: start token, ids, end token, padded or "
      "truncated to the context length (end token kept)");
  add_source_options(tokenize, tokenize_options->source);
  tokenize
      ->add_option("--context", tokenize_options->source.context_length,
                   "Context length (default: the config's model.text.context_length, else 77)")
      ->check(CLI::PositiveNumber);
  tokenize->add_flag("--json", tokenize_options->json, "Print one JSON array per text");
  tokenize->add_flag("--raw", tokenize_options->raw,
                     "Print only the text's ids: no start/end tokens, padding or truncation");
  tokenize
      ->add_option("texts", tokenize_options->texts,
                   "Texts to tokenize; '-' reads one text per line from stdin")
      ->required();
  registry.add(tokenize, [tokenize_options] { run_tokenize(*tokenize_options); });

  CLI::App* tokenizer = root.add_subcommand("tokenizer", "Train and inspect tokenizers");
  tokenizer->require_subcommand(1);

  auto train_options = std::make_shared<TrainOptions>();
  CLI::App* train = tokenizer->add_subcommand(
      "train",
      "Train a SentencePiece model on a caption file (one caption per line); writes "
      "PREFIX.model and PREFIX.vocab with pad 0, unk 1, bos (start) 2, eos (end) 3");
  train->add_option("--input", train_options->input, "Caption file, UTF-8, one per line")
      ->required();
  train
      ->add_option("--vocab-size", train_options->vocab_size,
                   "Vocabulary size, the four reserved ids included (set model.text.vocab_size "
                   "to it)")
      ->required()
      ->check(CLI::PositiveNumber);
  train->add_option("--out", train_options->out, "Output prefix (directories are created)")
      ->required();
  train->add_option("--model-type", train_options->train.model_type, "SentencePiece algorithm")
      ->check(CLI::IsMember({"unigram", "bpe", "char", "word"}))
      ->capture_default_str();
  train
      ->add_option("--character-coverage", train_options->train.character_coverage,
                   "Fraction of characters the vocabulary covers; the rarest rest map to unk")
      ->check(CLI::Range(0.98, 1.0))
      ->capture_default_str();
  train
      ->add_option("--normalization", train_options->train.normalization,
                   "SentencePiece normalisation rule; the _cf ones also case-fold, as CLIP "
                   "lower-cases")
      ->check(CLI::IsMember({"nmt_nfkc_cf", "nmt_nfkc", "nfkc_cf", "nfkc", "identity"}))
      ->capture_default_str();
  train
      ->add_option("--max-sentences", train_options->train.max_sentences,
                   "Train on a random sample of this many captions; 0 uses all")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  registry.add(train, [train_options] {
    const std::string model = text::train_sentencepiece(
        train_options->input, train_options->vocab_size, train_options->out, train_options->train);
    std::cout << model << '\n';
  });

  auto info_source = std::make_shared<TokenizerSource>();
  CLI::App* info = tokenizer->add_subcommand(
      "info",
      "Print a tokenizer's vocabulary size and special ids; with -c, also check "
      "model.text.vocab_size against it");
  add_source_options(info, *info_source);
  registry.add(info, [info_source] { run_info(*info_source); });
}

}  // namespace duet::cli
