#pragma once
// Small model configs, token batches and comparison helpers shared by the model tests.
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"
#include "config/config.h"
#include "text/tokenizer.h"

namespace duet::models::test {

// A model small enough for float64 forward/backward checks in milliseconds: 16 px images in a
// 4x4 grid (17 tokens), widths 32, 2 layers, 4 heads, context 12, vocabulary 50, embed 24.
inline config::ModelConfig tiny_config() {
  config::ModelConfig c;
  c.name = "test-tiny";
  c.embed_dim = 24;
  c.vision.image_size = 16;
  c.vision.patch_size = 4;
  c.vision.width = 32;
  c.vision.layers = 2;
  c.vision.heads = 4;
  c.text.context_length = 12;
  c.text.vocab_size = 50;
  c.text.width = 32;
  c.text.layers = 2;
  c.text.heads = 4;
  return c;
}

// CLIP-like ids: SOT 48, EOT 49, padding 0.
inline text::TokenizerInfo tiny_tokenizer() {
  text::TokenizerInfo info;
  info.vocab_size = 50;
  info.sot_id = 48;
  info.eot_id = 49;
  info.pad_id = 0;
  return info;
}

// [B, L] int64 rows "SOT w1 .. wn EOT pad ..." with the EOT of row b at eot_positions[b] and
// words drawn from [1, 48).
inline torch::Tensor make_tokens(const std::vector<int64_t>& eot_positions, int64_t context,
                                 const text::TokenizerInfo& info = tiny_tokenizer()) {
  const auto batch = static_cast<int64_t>(eot_positions.size());
  torch::Tensor tokens = torch::full({batch, context}, info.pad_id, torch::kLong);
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t eot = eot_positions[static_cast<size_t>(b)];
    tokens[b][0] = info.sot_id;
    if (eot > 1) {
      tokens[b].narrow(0, 1, eot - 1).copy_(torch::randint(1, 48, {eot - 1}, torch::kLong));
    }
    tokens[b][eot] = info.eot_id;
  }
  return tokens;
}

inline double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

// Copies every parameter of `from` into `to` (same architecture, same names).
inline void copy_parameters(torch::nn::Module& to, const torch::nn::Module& from) {
  torch::NoGradGuard no_grad;
  auto source = from.named_parameters();
  for (auto& item : to.named_parameters()) {
    item.value().copy_(source[item.key()]);
  }
}

// What `fn` threw: a duet::Error's kind and message (other exceptions propagate and fail the
// test); `thrown` is false when it returned normally.
struct Caught {
  bool thrown = false;
  ErrorKind kind = ErrorKind::kRuntime;
  std::string message;
};

template <class F>
Caught catch_error(F&& fn) {
  Caught caught;
  try {
    fn();
  } catch (const Error& e) {
    caught.thrown = true;
    caught.kind = e.kind();
    caught.message = e.what();
  }
  return caught;
}

}  // namespace duet::models::test
