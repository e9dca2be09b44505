#pragma once
// duet's configuration: typed, validated once, then passed by section to each component.
// Every key, its default, its rule and its help text is declared here and nowhere else;
// docs/configuration.md is generated from these declarations (`duet config reference`).
#include <cstdint>
#include <string>
#include <vector>

#include "config/schema.h"

namespace duet::config {

// ---- enumerated values (schema.h: one spelling each, used by YAML, docs and messages) ----

enum class Activation { kGelu, kGeluTanh, kQuickGelu };
inline const Spellings<Activation>& spellings(Activation) {
  static const Spellings<Activation> s{{Activation::kGelu, "gelu"},
                                       {Activation::kGeluTanh, "gelu_tanh"},
                                       {Activation::kQuickGelu, "quick_gelu"}};
  return s;
}

enum class VisionPool { kClass, kMean, kAttention };
inline const Spellings<VisionPool>& spellings(VisionPool) {
  static const Spellings<VisionPool> s{{VisionPool::kClass, "class"},
                                       {VisionPool::kMean, "mean"},
                                       {VisionPool::kAttention, "attention"}};
  return s;
}

enum class TextPool { kEot, kLast };
inline const Spellings<TextPool>& spellings(TextPool) {
  static const Spellings<TextPool> s{{TextPool::kEot, "eot"}, {TextPool::kLast, "last"}};
  return s;
}

enum class AttentionImpl { kAuto, kFused, kExplicit };
inline const Spellings<AttentionImpl>& spellings(AttentionImpl) {
  static const Spellings<AttentionImpl> s{{AttentionImpl::kAuto, "auto"},
                                          {AttentionImpl::kFused, "fused"},
                                          {AttentionImpl::kExplicit, "explicit"}};
  return s;
}

enum class TokenizerType { kClipBpe, kSentencePiece };
inline const Spellings<TokenizerType>& spellings(TokenizerType) {
  static const Spellings<TokenizerType> s{{TokenizerType::kClipBpe, "clip_bpe"},
                                          {TokenizerType::kSentencePiece, "sentencepiece"}};
  return s;
}

enum class LossType { kClip, kSiglip };
inline const Spellings<LossType>& spellings(LossType) {
  static const Spellings<LossType> s{{LossType::kClip, "clip"}, {LossType::kSiglip, "siglip"}};
  return s;
}

// What loss.implementation asks for; losses/implementation.h resolves kAuto per device.
enum class LossImplementation { kAuto, kReference, kTiled, kFused };
inline const Spellings<LossImplementation>& spellings(LossImplementation) {
  static const Spellings<LossImplementation> s{{LossImplementation::kAuto, "auto"},
                                               {LossImplementation::kReference, "reference"},
                                               {LossImplementation::kTiled, "tiled"},
                                               {LossImplementation::kFused, "fused"}};
  return s;
}

enum class ScheduleType { kCosine, kConstant };
inline const Spellings<ScheduleType>& spellings(ScheduleType) {
  static const Spellings<ScheduleType> s{{ScheduleType::kCosine, "cosine"},
                                         {ScheduleType::kConstant, "constant"}};
  return s;
}

enum class Precision { kFp32, kBf16 };
inline const Spellings<Precision>& spellings(Precision) {
  static const Spellings<Precision> s{{Precision::kFp32, "fp32"}, {Precision::kBf16, "bf16"}};
  return s;
}

enum class DeviceChoice { kAuto, kCpu, kCuda };
inline const Spellings<DeviceChoice>& spellings(DeviceChoice) {
  static const Spellings<DeviceChoice> s{
      {DeviceChoice::kAuto, "auto"}, {DeviceChoice::kCpu, "cpu"}, {DeviceChoice::kCuda, "cuda"}};
  return s;
}

enum class Backend { kAuto, kNccl, kGloo, kNone };
inline const Spellings<Backend>& spellings(Backend) {
  static const Spellings<Backend> s{{Backend::kAuto, "auto"},
                                    {Backend::kNccl, "nccl"},
                                    {Backend::kGloo, "gloo"},
                                    {Backend::kNone, "none"}};
  return s;
}

enum class ExportFormat { kHf, kOpenClip, kSafetensors };
inline const Spellings<ExportFormat>& spellings(ExportFormat) {
  static const Spellings<ExportFormat> s{{ExportFormat::kHf, "hf"},
                                         {ExportFormat::kOpenClip, "open_clip"},
                                         {ExportFormat::kSafetensors, "safetensors"}};
  return s;
}

enum class ExportDtype { kFloat32, kFloat16, kBFloat16 };
inline const Spellings<ExportDtype>& spellings(ExportDtype) {
  static const Spellings<ExportDtype> s{{ExportDtype::kFloat32, "float32"},
                                        {ExportDtype::kFloat16, "float16"},
                                        {ExportDtype::kBFloat16, "bfloat16"}};
  return s;
}

// ---- sections ---------------------------------------------------------------------------

struct VisionConfig {
  int64_t image_size = 224;
  int64_t patch_size = 32;
  int64_t width = 768;
  int64_t layers = 12;
  int64_t heads = 12;
  double mlp_ratio = 4.0;
  Activation act = Activation::kGelu;
  VisionPool pool = VisionPool::kClass;
  bool class_token = true;
  bool patch_bias = false;
  bool ln_pre = true;
  bool proj = true;
  double patch_dropout = 0.0;
  double ls_init = 0.0;
  bool grad_checkpointing = false;

  template <class V>
  void visit(V& v) {
    v.field("image_size", image_size, "Input resolution in pixels (square images).", positive());
    v.field("patch_size", patch_size, "Side of the square patches (conv1 kernel and stride).",
            positive());
    v.field("width", width, "Transformer width.", positive());
    v.field("layers", layers, "Number of residual attention blocks.", positive());
    v.field("heads", heads, "Attention heads per block; must divide width.", positive());
    v.field("mlp_ratio", mlp_ratio, "MLP hidden size as a multiple of width.", positive());
    v.field("act", act, "MLP activation (gelu_tanh: GELU's tanh approximation, SigLIP's).");
    v.field("pool", pool,
            "Pooling: class token (CLIP), mean of patch tokens, or attention pooling with a "
            "learned probe (SigLIP).");
    v.field("class_token", class_token,
            "Prepend a learned class token (CLIP). Off, as in SigLIP and transformers' "
            "SiglipModel, only patch tokens exist and pool must be mean or attention.");
    v.field("patch_bias", patch_bias,
            "Bias on the patch-embedding convolution (SigLIP has one, CLIP none).");
    v.field("ln_pre", ln_pre, "LayerNorm before the first block (CLIP); SigLIP has none.");
    v.field("proj", proj,
            "Linear projection (no bias) from the pooled width to model.embed_dim. Off, as in "
            "SigLIP, the pooled token is the embedding and width must equal model.embed_dim.");
    v.field("patch_dropout", patch_dropout,
            "Fraction of patch tokens dropped during training (class token kept); 0 disables.",
            from_below(0.0, 1.0));
    v.field("ls_init", ls_init, "LayerScale initial value; 0 disables LayerScale.", at_least(0.0));
    v.field("grad_checkpointing", grad_checkpointing,
            "Recompute block activations in backward to save memory.");
  }
};

struct TextConfig {
  int64_t context_length = 77;
  int64_t vocab_size = 49408;
  int64_t width = 512;
  int64_t layers = 12;
  int64_t heads = 8;
  double mlp_ratio = 4.0;
  Activation act = Activation::kGelu;
  bool causal = true;
  TextPool pool = TextPool::kEot;
  bool proj_bias = false;
  double ls_init = 0.0;
  bool grad_checkpointing = false;

  template <class V>
  void visit(V& v) {
    v.field("context_length", context_length, "Tokens per caption, start and end tokens included.",
            at_least(2));
    v.field("vocab_size", vocab_size,
            "Token embedding rows; must equal the tokenizer's vocabulary.", positive());
    v.field("width", width, "Transformer width.", positive());
    v.field("layers", layers, "Number of residual attention blocks.", positive());
    v.field("heads", heads, "Attention heads per block; must divide width.", positive());
    v.field("mlp_ratio", mlp_ratio, "MLP hidden size as a multiple of width.", positive());
    v.field("act", act, "MLP activation (gelu_tanh: GELU's tanh approximation, SigLIP's).");
    v.field("causal", causal, "Causal attention mask (CLIP) or bidirectional (SigLIP).");
    v.field("pool", pool,
            "Pooled token: the end-of-text token (CLIP) or the last position (SigLIP).");
    v.field("proj_bias", proj_bias,
            "Bias on the projection to model.embed_dim (SigLIP's text head has one, CLIP none).");
    v.field("ls_init", ls_init, "LayerScale initial value; 0 disables LayerScale.", at_least(0.0));
    v.field("grad_checkpointing", grad_checkpointing,
            "Recompute block activations in backward to save memory.");
  }
};

struct ModelConfig {
  std::string name;
  int64_t embed_dim = 512;
  AttentionImpl attention = AttentionImpl::kAuto;
  double init_logit_scale = 2.6592600369327779;  // ln(1 / 0.07)
  bool logit_bias = false;
  double init_logit_bias = -10.0;
  std::string init_from;
  bool lock_image = false;
  VisionConfig vision;
  TextConfig text;

  template <class V>
  void visit(V& v) {
    v.field("name", name, "Free-form model name, recorded in checkpoints and exports.");
    v.field("embed_dim", embed_dim, "Dimension of the shared image-text embedding space.",
            positive());
    v.field("attention", attention,
            "Attention implementation: fused scaled-dot-product where LibTorch has it (auto), "
            "always fused, or the explicit softmax(QK^T)V.");
    v.field("init_logit_scale", init_logit_scale,
            "Initial log temperature: ln(1/0.07) for CLIP, ln(10) for SigLIP.");
    v.field("logit_bias", logit_bias, "Learnable logit bias (SigLIP).");
    v.field("init_logit_bias", init_logit_bias, "Initial logit bias when logit_bias is on.");
    v.field("init_from", init_from,
            "Initial weights: a duet checkpoint directory, a transformers CLIPModel/SiglipModel "
            "directory, an OpenCLIP export (directory or .safetensors) or a duet .safetensors "
            "file; empty keeps the random init. Every key must match (docs/export.md).");
    v.field("lock_image", lock_image,
            "Freeze the image tower (LiT): its parameters get no gradients and no optimiser "
            "state.");
    v.section("vision", vision, "Image tower (Vision Transformer).");
    v.section("text", text, "Text tower (Transformer).");
  }
};

struct TokenizerConfig {
  TokenizerType type = TokenizerType::kClipBpe;
  std::string path;

  template <class V>
  void visit(V& v) {
    v.field("type", type, "Tokenizer: CLIP's byte-level BPE or a SentencePiece model.");
    v.field("path", path,
            "CLIP BPE merges file (bpe_simple_vocab_16e6.txt[.gz], ships with OpenCLIP and "
            "OpenAI CLIP) or SentencePiece .model file.");
  }
};

struct DataConfig {
  std::vector<std::string> train;
  std::string csv_separator = "\t";
  std::string csv_img_key = "filepath";
  std::string csv_caption_key = "title";
  int64_t workers = -1;  // data::resolve_workers: one per core this rank has, up to 32
  int64_t prefetch = 4;
  int64_t shuffle_buffer = 1000;
  std::vector<double> rrc_scale = {0.9, 1.0};
  bool hflip = false;
  std::vector<double> mean = {0.48145466, 0.4578275, 0.40821073};
  std::vector<double> stddev = {0.26862954, 0.26130258, 0.27577711};

  template <class V>
  void visit(V& v) {
    v.field("train", train,
            "Training sources: CSV/TSV files or WebDataset tar shards (brace patterns allowed).");
    v.field("csv_separator", csv_separator, "Column separator of CSV/TSV sources.");
    v.field("csv_img_key", csv_img_key, "Column holding image paths (relative to the CSV file).");
    v.field("csv_caption_key", csv_caption_key, "Column holding captions.");
    v.field("workers", workers,
            "Decoding threads per rank; 0 decodes on the training thread; -1 picks one per CPU "
            "core of this rank (the cores it may run on, shared among the ranks a launcher "
            "starts on one node), at most 32.",
            at_least(-1));
    v.field("prefetch", prefetch, "Batches prepared ahead of the training step.", at_least(1));
    v.field("shuffle_buffer", shuffle_buffer,
            "Samples in the shuffle buffer; 0 disables shuffling.", at_least(0));
    v.field("rrc_scale", rrc_scale, "Random resized crop area range [min, max].",
            between(0.0, 1.0));
    v.field("hflip", hflip, "Random horizontal flips during training.");
    v.field("mean", mean, "Per-channel normalisation mean (RGB).");
    v.field("std", stddev, "Per-channel normalisation standard deviation (RGB).");
  }
};

struct LossConfig {
  LossType type = LossType::kClip;
  LossImplementation implementation = LossImplementation::kAuto;
  int64_t tile_size = 256;

  template <class V>
  void visit(V& v) {
    v.field("type", type, "Symmetric InfoNCE (clip) or pairwise sigmoid (siglip).");
    v.field("implementation", implementation,
            "reference (plain ATen ops, materialises the n x M logits), tiled (ATen ops on "
            "tiles, any device, O(n+M) saved state), fused (the CUDA kernels: CUDA devices, in "
            "builds with them - `duet --version` says), or auto (fused where the build and device "
            "have it, else tiled).");
    v.field("tile_size", tile_size, "Rows and columns per tile of the tiled loss.", positive());
  }
};

struct OptimConfig {
  double lr = 5e-4;
  double weight_decay = 0.2;
  double beta1 = 0.9;
  double beta2 = 0.98;
  double eps = 1e-6;
  double grad_clip_norm = 0.0;
  double logit_scale_max = 4.6051701859880914;  // ln(100)

  template <class V>
  void visit(V& v) {
    v.field("lr", lr, "Peak learning rate (AdamW).", positive());
    v.field("weight_decay", weight_decay,
            "Decoupled weight decay; never applied to gains, biases, embeddings, logit scale/bias.",
            at_least(0.0));
    v.field("beta1", beta1, "AdamW beta1.", from_below(0.0, 1.0));
    v.field("beta2", beta2, "AdamW beta2.", from_below(0.0, 1.0));
    v.field("eps", eps, "AdamW epsilon.", positive());
    v.field("grad_clip_norm", grad_clip_norm, "Clip the global gradient norm; 0 disables.",
            at_least(0.0));
    v.field("logit_scale_max", logit_scale_max,
            "logit_scale is clamped to [0, this] after each step (ln 100 by default).",
            at_least(0.0));
  }
};

struct ScheduleConfig {
  ScheduleType type = ScheduleType::kCosine;
  int64_t warmup_steps = 0;
  double min_lr = 0.0;

  template <class V>
  void visit(V& v) {
    v.field("type", type, "Learning-rate schedule after warmup.");
    v.field("warmup_steps", warmup_steps, "Linear warmup steps from 0 to optim.lr.", at_least(0));
    v.field("min_lr", min_lr, "Final learning rate of the cosine schedule.", at_least(0.0));
  }
};

struct TrainConfig {
  int64_t steps = 1000;
  int64_t epochs = 0;
  int64_t batch_size = 256;
  int64_t accum_steps = 1;
  Precision precision = Precision::kFp32;
  int64_t seed = 0;
  DeviceChoice device = DeviceChoice::kAuto;
  int64_t threads = 0;
  std::string output_dir = "runs";
  std::string run_name;
  int64_t nan_patience = 5;

  template <class V>
  void visit(V& v) {
    v.field("steps", steps, "Optimiser steps; 0 to train by epochs instead.", at_least(0));
    v.field("epochs", epochs, "Passes over the training data; 0 to train by steps.", at_least(0));
    v.field("batch_size", batch_size,
            "Global contrastive batch per optimiser step (all ranks, all accumulation steps).",
            positive());
    v.field("accum_steps", accum_steps,
            "Micro-batches per step; features are cached so the loss still sees the whole batch.",
            positive());
    v.field("precision", precision, "fp32, or bf16 autocast where LibTorch supports it.");
    v.field("seed", seed, "Seed for initialisation, data order and augmentation.", at_least(0));
    v.field("device", device, "Where to train: cuda when available (auto), cpu or cuda.");
    v.field("threads", threads, "Intra-op CPU threads; 0 keeps LibTorch's default.", at_least(0));
    v.field("output_dir", output_dir, "Directory that holds run directories.");
    v.field("run_name", run_name,
            "Run directory name under output_dir; empty uses the config file's name without "
            "its extension (runs/fashion-mnist for configs/fashion-mnist.yaml).");
    v.field("nan_patience", nan_patience,
            "Stop after this many consecutive steps with a non-finite loss or gradient.",
            positive());
  }
};

struct ZeroShotConfig {
  std::string source;
  std::string classnames;
  std::string templates;

  template <class V>
  void visit(V& v) {
    v.field("source", source, "Labelled images (a source whose captions are class indices).");
    v.field("classnames", classnames, "Text file, one class name per line.");
    v.field("templates", templates,
            "Text file, one prompt template per line with {} for the name.");
  }
};

struct EvalConfig {
  int64_t every_steps = 0;
  int64_t batch_size = 256;
  std::vector<std::string> retrieval;
  std::vector<std::string> benchmarks;
  ZeroShotConfig zero_shot;

  template <class V>
  void visit(V& v) {
    v.field("every_steps", every_steps, "Evaluate every N steps; 0 evaluates only at the end.",
            at_least(0));
    v.field("batch_size", batch_size, "Batch size for computing evaluation embeddings.",
            positive());
    v.field("retrieval", retrieval, "Image-text sources for retrieval in both directions.");
    v.field("benchmarks", benchmarks,
            "CLIP_benchmark WebDataset datasets, each evaluated on its own: DIR or DIR:SPLIT "
            "(split test by default); DIR/dataset_type.txt picks zero-shot classification, "
            "retrieval or multilabel. Metrics are named DATASET/SPLIT/METRIC.");
    v.section("zero_shot", zero_shot, "Zero-shot classification.");
  }
};

struct DistributedConfig {
  Backend backend = Backend::kAuto;
  int64_t timeout_seconds = 300;
  int64_t bucket_mb = 25;

  template <class V>
  void visit(V& v) {
    v.field("backend", backend,
            "Communicator: nccl for CUDA, gloo for CPU (auto picks by device), none for one "
            "process.");
    v.field("timeout_seconds", timeout_seconds,
            "A rank that does not answer within this time fails the job on every rank.",
            positive());
    v.field("bucket_mb", bucket_mb, "Size of the flat gradient all-reduce buckets.", positive());
  }
};

struct LoggingConfig {
  std::string level = "info";
  int64_t every_steps = 10;
  bool jsonl = true;
  bool tensorboard = true;

  template <class V>
  void visit(V& v) {
    v.field("level", level,
            "Log level of the commands that read this config; --log-level on the command line, "
            "when given, wins.",
            one_of({"trace", "debug", "info", "warn", "error", "off"}));
    v.field("every_steps", every_steps, "Progress line and metrics every N steps.", positive());
    v.field("jsonl", jsonl, "Write metrics.jsonl in the run directory.");
    v.field("tensorboard", tensorboard, "Write TensorBoard event files in the run directory.");
  }
};

struct CheckpointConfig {
  int64_t every_steps = 0;
  int64_t keep_last = 3;
  std::string resume;

  template <class V>
  void visit(V& v) {
    v.field("every_steps", every_steps, "Save every N steps; 0 saves only at the end.",
            at_least(0));
    v.field("keep_last", keep_last, "Checkpoints kept in the run directory.", positive());
    v.field("resume", resume, "Empty (fresh run), 'latest' (newest good checkpoint) or a path.");
  }
};

struct ExportConfig {
  ExportFormat format = ExportFormat::kHf;
  ExportDtype dtype = ExportDtype::kFloat32;

  template <class V>
  void visit(V& v) {
    v.field("format", format,
            "hf (transformers directory), open_clip (OpenCLIP/OpenAI state dict) or safetensors.");
    v.field("dtype", dtype, "Parameter dtype in the exported files.");
  }
};

struct Config {
  ModelConfig model;
  TokenizerConfig tokenizer;
  DataConfig data;
  LossConfig loss;
  OptimConfig optim;
  ScheduleConfig schedule;
  TrainConfig train;
  EvalConfig eval;
  DistributedConfig distributed;
  LoggingConfig logging;
  CheckpointConfig checkpoint;
  ExportConfig export_;

  template <class V>
  void visit(V& v) {
    v.section("model", model, "Model architecture.");
    v.section("tokenizer", tokenizer, "Text tokenizer.");
    v.section("data", data, "Training data and preprocessing.");
    v.section("loss", loss, "Contrastive loss.");
    v.section("optim", optim, "AdamW optimiser.");
    v.section("schedule", schedule, "Learning-rate schedule.");
    v.section("train", train, "Training loop.");
    v.section("eval", eval, "Evaluation during and after training.");
    v.section("distributed", distributed, "Multi-process training.");
    v.section("logging", logging, "Progress lines and metrics.");
    v.section("checkpoint", checkpoint, "Checkpoints and resuming.");
    v.section("export", export_, "Export defaults for `duet export`.");
  }
};

}  // namespace duet::config
