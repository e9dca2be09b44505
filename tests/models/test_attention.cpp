// Attention kernels, the shared Transformer blocks, LayerScale and gradient checkpointing.
// Oracles: LibTorch's own torch::nn::MultiheadAttention for the packed layout, the explicit
// kernel for the fused one, the non-checkpointed graph for the checkpointed one (float64).
#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include "common/test_util.h"
#include "common/torch_compat.h"
#include "model_test_util.h"
#include "models/attention.h"
#include "models/checkpoint.h"
#include "models/transformer.h"

namespace duet::models {
namespace {

using test::max_abs_diff;

// float64 tolerance for two orderings of the same sums over a few hundred terms.
constexpr double kTol64 = 1e-11;

TransformerOptions block_options(int64_t width, int64_t layers, int64_t heads) {
  TransformerOptions o;
  o.width = width;
  o.layers = layers;
  o.heads = heads;
  o.mlp_width = 4 * width;
  return o;
}

std::vector<torch::Tensor> grads_of(const torch::Tensor& out, const torch::Tensor& upstream,
                                    const std::vector<torch::Tensor>& inputs) {
  return torch::autograd::grad({out}, inputs, {upstream});
}

TEST_CASE("model.attention resolves to a kernel", "[models][attention]") {
  CHECK(resolve_attention_kernel(config::AttentionImpl::kExplicit) == AttentionKernel::kExplicit);
  CHECK(resolve_attention_kernel(config::AttentionImpl::kAuto) ==
        (DUET_TORCH_HAS_SDPA ? AttentionKernel::kFused : AttentionKernel::kExplicit));
}

#if DUET_TORCH_HAS_SDPA
TEST_CASE("fused and explicit attention agree forward and backward (float64)",
          "[models][attention]") {
  torch::manual_seed(1);
  // {batch, heads, queries, keys, head dim}: single tokens, primes, a cross-attention shape.
  const std::vector<std::vector<int64_t>> shapes = {
      {1, 1, 1, 1, 8}, {2, 3, 7, 7, 5}, {3, 2, 13, 13, 16}, {2, 4, 1, 17, 8}};
  for (const auto& s : shapes) {
    for (bool causal : {false, true}) {
      if (causal && s[2] != s[3]) {
        continue;  // causal masks are for self-attention
      }
      auto opts = torch::TensorOptions().dtype(torch::kDouble);
      torch::Tensor q = torch::randn({s[0], s[1], s[2], s[4]}, opts).requires_grad_();
      torch::Tensor k = torch::randn({s[0], s[1], s[3], s[4]}, opts).requires_grad_();
      torch::Tensor v = torch::randn({s[0], s[1], s[3], s[4]}, opts).requires_grad_();
      torch::Tensor fused = scaled_dot_product_attention(q, k, v, causal, AttentionKernel::kFused);
      torch::Tensor plain =
          scaled_dot_product_attention(q, k, v, causal, AttentionKernel::kExplicit);
      INFO("shape " << torch::IntArrayRef(s) << " causal " << causal);
      REQUIRE(fused.sizes() == plain.sizes());
      CHECK(max_abs_diff(fused, plain) < kTol64);
      torch::Tensor upstream = torch::randn_like(fused);
      auto g_fused = grads_of(fused, upstream, {q, k, v});
      auto g_plain = grads_of(plain, upstream, {q, k, v});
      for (size_t i = 0; i < 3; ++i) {
        CHECK(max_abs_diff(g_fused[i], g_plain[i]) < kTol64);
      }
    }
  }
}

TEST_CASE("a whole block gives the same outputs and gradients with either kernel",
          "[models][attention]") {
  torch::manual_seed(2);
  TransformerOptions fused_opts = block_options(24, 2, 3);
  TransformerOptions plain_opts = fused_opts;
  fused_opts.attention = AttentionKernel::kFused;
  plain_opts.attention = AttentionKernel::kExplicit;
  Transformer fused(fused_opts);
  Transformer plain(plain_opts);
  fused->to(torch::kDouble);
  plain->to(torch::kDouble);
  test::copy_parameters(*plain, *fused);
  torch::Tensor x = torch::randn({3, 11, 24}, torch::kDouble);
  for (bool causal : {false, true}) {
    torch::Tensor y_fused = fused(x, causal);
    torch::Tensor y_plain = plain(x, causal);
    CHECK(max_abs_diff(y_fused, y_plain) < kTol64);
    torch::Tensor upstream = torch::randn_like(y_fused);
    auto g_fused = grads_of(y_fused, upstream, fused->parameters());
    auto g_plain = grads_of(y_plain, upstream, plain->parameters());
    for (size_t i = 0; i < g_fused.size(); ++i) {
      CHECK(max_abs_diff(g_fused[i], g_plain[i]) < kTol64);
    }
  }
}
#endif

TEST_CASE("MultiheadAttention matches torch::nn::MultiheadAttention with the same weights",
          "[models][attention]") {
  torch::manual_seed(3);
  const int64_t width = 20;
  const int64_t heads = 4;
  const int64_t tokens = 9;
  const int64_t batch = 2;
  auto kernel = GENERATE(AttentionKernel::kExplicit, AttentionKernel::kFused);
  if (kernel == AttentionKernel::kFused && !DUET_TORCH_HAS_SDPA) {
    DUET_SKIP_OR_FAIL_IN_CI("this LibTorch has no scaled_dot_product_attention (before 2.0)");
  }
  MultiheadAttention ours(width, heads, kernel);
  torch::nn::MultiheadAttention reference(torch::nn::MultiheadAttentionOptions(width, heads));
  ours->to(torch::kDouble);
  reference->to(torch::kDouble);
  {
    torch::NoGradGuard no_grad;
    ours->in_proj_weight.normal_();
    ours->in_proj_bias.normal_();
    ours->out_proj->bias.normal_();
    reference->in_proj_weight.copy_(ours->in_proj_weight);
    reference->in_proj_bias.copy_(ours->in_proj_bias);
    reference->out_proj->weight.copy_(ours->out_proj->weight);
    reference->out_proj->bias.copy_(ours->out_proj->bias);
  }
  torch::Tensor x = torch::randn({batch, tokens, width}, torch::kDouble);  // [B, N, W]
  torch::Tensor x_seq = x.transpose(0, 1);                                 // [N, B, W]
  // The additive mask OpenAI's text tower uses: -inf above the diagonal.
  torch::Tensor mask =
      torch::full({tokens, tokens}, -std::numeric_limits<double>::infinity(), torch::kDouble)
          .triu(1);
  for (bool causal : {false, true}) {
    torch::Tensor expected =
        std::get<0>(reference->forward(x_seq, x_seq, x_seq, /*key_padding_mask=*/{},
                                       /*need_weights=*/false, causal ? mask : torch::Tensor()))
            .transpose(0, 1);
    CHECK(max_abs_diff(ours(x, causal), expected) < kTol64);
  }
  // Cross-attention: 3 queries attend to the 9 tokens.
  torch::Tensor queries = torch::randn({batch, 3, width}, torch::kDouble);
  torch::Tensor expected =
      std::get<0>(reference->forward(queries.transpose(0, 1), x_seq, x_seq, {}, false))
          .transpose(0, 1);
  CHECK(max_abs_diff(ours->cross(queries, x), expected) < kTol64);
}

TEST_CASE("causal attention ignores later tokens", "[models][attention]") {
  torch::manual_seed(4);
  MultiheadAttention attn(16, 2, AttentionKernel::kExplicit);
  attn->to(torch::kDouble);
  torch::Tensor x = torch::randn({2, 8, 16}, torch::kDouble);
  torch::Tensor changed = x.clone();
  changed.narrow(1, 5, 3).normal_();  // positions 5..7
  torch::Tensor a = attn(x, true);
  torch::Tensor b = attn(changed, true);
  CHECK(max_abs_diff(a.narrow(1, 0, 5), b.narrow(1, 0, 5)) < kTol64);
  CHECK(max_abs_diff(a.narrow(1, 5, 3), b.narrow(1, 5, 3)) > 1e-3);
  // Bidirectional attention does see them.
  CHECK(max_abs_diff(attn(x, false).narrow(1, 0, 5), attn(changed, false).narrow(1, 0, 5)) > 1e-3);
}

TEST_CASE("MLP activations", "[models][transformer]") {
  torch::manual_seed(5);
  Mlp quick(6, 10, Activation::kQuickGelu);
  Mlp exact(6, 10, Activation::kGelu);
  test::copy_parameters(*exact, *quick);
  torch::Tensor x = torch::randn({4, 6});
  torch::Tensor h = quick->c_fc(x);
  CHECK(max_abs_diff(quick(x), quick->c_proj(h * torch::sigmoid(1.702 * h))) < 1e-6);
  CHECK(max_abs_diff(exact(x), exact->c_proj(0.5 * h * (1 + torch::erf(h / std::sqrt(2.0))))) <
        1e-6);
  // tanh approximation: 0.5 h (1 + tanh(sqrt(2 / pi) (h + 0.044715 h^3)))
  Mlp tanh_gelu(6, 10, Activation::kGeluTanh);
  test::copy_parameters(*tanh_gelu, *quick);
  const double c = std::sqrt(2.0 / M_PI);
  CHECK(max_abs_diff(
            tanh_gelu(x),
            tanh_gelu->c_proj(0.5 * h * (1 + torch::tanh(c * (h + 0.044715 * h * h * h))))) < 1e-6);
}

TEST_CASE("LayerScale parameters exist only when ls_init > 0", "[models][transformer]") {
  TransformerOptions options = block_options(16, 2, 2);
  Transformer off(options);
  for (const auto& item : off->named_parameters()) {
    CHECK(item.key().find("ls_") == std::string::npos);
  }
  options.ls_init = 0.25;
  Transformer on(options);
  auto params = on->named_parameters();
  for (const char* key : {"resblocks.0.ls_1.gamma", "resblocks.0.ls_2.gamma",
                          "resblocks.1.ls_1.gamma", "resblocks.1.ls_2.gamma"}) {
    INFO(key);
    REQUIRE(params.contains(key));
    CHECK(params[key].sizes() == torch::IntArrayRef({16}));
    CHECK(torch::all(params[key] == 0.25).item<bool>());
  }
  CHECK(params.size() == off->named_parameters().size() + 4);
  // Zero gains switch both residual branches off: the stack becomes the identity.
  {
    torch::NoGradGuard no_grad;
    for (auto& item : params) {
      if (item.key().find(".gamma") != std::string::npos) {
        item.value().zero_();
      }
    }
  }
  torch::Tensor x = torch::randn({2, 5, 16});
  CHECK(max_abs_diff(on(x, true), x) == 0.0);
  CHECK(max_abs_diff(off(x, true), x) > 1e-3);
}

TEST_CASE("gradient checkpointing gives the gradients of the plain graph", "[models][checkpoint]") {
  torch::manual_seed(6);
  TransformerOptions options = block_options(24, 3, 4);
  options.ls_init = 0.5;
  options.attention = AttentionKernel::kExplicit;
  TransformerOptions checkpointed_options = options;
  checkpointed_options.grad_checkpointing = true;
  Transformer plain(options);
  Transformer checkpointed(checkpointed_options);
  plain->to(torch::kDouble);
  checkpointed->to(torch::kDouble);
  test::copy_parameters(*checkpointed, *plain);

  torch::Tensor x = torch::randn({2, 7, 24}, torch::kDouble);
  for (bool causal : {true, false}) {
    torch::Tensor x_plain = x.clone().requires_grad_();
    torch::Tensor x_ckpt = x.clone().requires_grad_();
    torch::Tensor y_plain = plain(x_plain, causal);
    torch::Tensor y_ckpt = checkpointed(x_ckpt, causal);
    // The last block's node is the checkpoint Function, so recomputation really happens.
    REQUIRE(y_ckpt.grad_fn());
    CHECK_THAT(y_ckpt.grad_fn()->name(), Catch::Contains("CheckpointFunction"));
    CHECK_THAT(y_plain.grad_fn()->name(), !Catch::Contains("CheckpointFunction"));
    CHECK(max_abs_diff(y_plain, y_ckpt) == 0.0);

    torch::Tensor upstream = torch::randn_like(y_plain);
    plain->zero_grad();
    checkpointed->zero_grad();
    (y_plain * upstream).sum().backward();
    (y_ckpt * upstream).sum().backward();
    CHECK(max_abs_diff(x_plain.grad(), x_ckpt.grad()) < kTol64);
    auto expected = plain->named_parameters();
    for (const auto& item : checkpointed->named_parameters()) {
      INFO(item.key());
      REQUIRE(item.value().grad().defined());
      CHECK(max_abs_diff(item.value().grad(), expected[item.key()].grad()) < kTol64);
    }
  }
}

#if DUET_TORCH_AT_LEAST(2, 4)
TEST_CASE("checkpointing recomputes under the forward's autocast state", "[models][checkpoint]") {
  torch::manual_seed(8);
  TransformerOptions options = block_options(32, 2, 4);
  options.attention = AttentionKernel::kExplicit;
  TransformerOptions checkpointed_options = options;
  checkpointed_options.grad_checkpointing = true;
  Transformer plain(options);
  Transformer checkpointed(checkpointed_options);
  test::copy_parameters(*checkpointed, *plain);
  torch::Tensor x = torch::randn({2, 9, 32});

  // Forward in bf16 autocast, backward outside it, as a trainer does.
  auto run = [&](Transformer& model) {
    model->zero_grad();
    at::autocast::set_autocast_dtype(at::kCPU, at::kBFloat16);
    at::autocast::set_autocast_enabled(at::kCPU, true);
    torch::Tensor y = model(x, true);
    at::autocast::set_autocast_enabled(at::kCPU, false);
    at::autocast::clear_cache();
    y.to(torch::kFloat).square().sum().backward();
    std::map<std::string, torch::Tensor> grads;
    for (const auto& item : model->named_parameters()) {
      grads[item.key()] = item.value().grad().to(torch::kFloat);
    }
    return grads;
  };
  auto expected = run(plain);
  auto actual = run(checkpointed);
  CHECK_FALSE(at::autocast::is_autocast_enabled(at::kCPU));  // the caller's state is back
  for (const auto& [key, grad] : expected) {
    INFO(key);
    // The recomputation repeats the same bf16 operations; an fp32 one would differ by ~1e-2.
    CHECK(max_abs_diff(actual[key], grad) <= 1e-6 * (1 + grad.abs().max().item<double>()));
  }
}
#endif

TEST_CASE("checkpoint leaves frozen parameters alone and is a plain call without grad",
          "[models][checkpoint]") {
  torch::manual_seed(7);
  torch::Tensor w = torch::randn({5, 5}, torch::kDouble).requires_grad_();
  torch::Tensor frozen = torch::randn({5}, torch::kDouble);
  auto fn = [&](const torch::Tensor& t) { return torch::tanh(torch::matmul(t, w) + frozen); };
  torch::Tensor x = torch::randn({3, 5}, torch::kDouble).requires_grad_();
  torch::Tensor y = checkpoint(fn, x, {w, frozen});
  torch::Tensor upstream = torch::randn_like(y);
  auto g = torch::autograd::grad({y}, {x, w}, {upstream});
  auto expected = torch::autograd::grad({fn(x)}, {x, w}, {upstream});
  CHECK(max_abs_diff(g[0], expected[0]) < kTol64);
  CHECK(max_abs_diff(g[1], expected[1]) < kTol64);
  {
    torch::NoGradGuard no_grad;
    torch::Tensor z = checkpoint(fn, x, {w, frozen});
    CHECK_FALSE(z.requires_grad());
  }
}

}  // namespace
}  // namespace duet::models
