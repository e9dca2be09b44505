// The text tower: shapes, causal masking as seen from the pooled features, first-EOT and last
// pooling, and the errors for bad configs and bad token batches.
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include "model_test_util.h"
#include "models/text_transformer.h"

namespace duet::models {
namespace {

using test::max_abs_diff;

TextTransformer make_text(const config::TextConfig& config) {
  TextTransformer text(config, test::tiny_tokenizer(), 24, AttentionKernel::kExplicit);
  text->to(torch::kDouble);
  return text;
}

TEST_CASE("text tower forward and parameter shapes", "[models][text]") {
  torch::manual_seed(20);
  TextTransformer text(test::tiny_config().text, test::tiny_tokenizer(), 24,
                       AttentionKernel::kExplicit);
  CHECK(text->token_embedding->weight.sizes() == torch::IntArrayRef({50, 32}));
  CHECK(text->positional_embedding.sizes() == torch::IntArrayRef({12, 32}));
  CHECK(text->text_projection.sizes() == torch::IntArrayRef({32, 24}));
  torch::Tensor out = text(test::make_tokens({3, 11, 1}, 12));
  CHECK(out.sizes() == torch::IntArrayRef({3, 24}));
}

TEST_CASE("with the causal mask, tokens after the EOT do not change the features",
          "[models][text]") {
  torch::manual_seed(21);
  config::TextConfig config = test::tiny_config().text;
  TextTransformer causal = make_text(config);
  config.causal = false;
  TextTransformer bidirectional = make_text(config);
  test::copy_parameters(*bidirectional, *causal);

  // EOT at k = 4; positions 5.. hold padding in one batch and other words in the second.
  torch::Tensor tokens = test::make_tokens({4, 4}, 12);
  torch::Tensor changed = tokens.clone();
  changed.narrow(1, 5, 7).random_(1, 48);
  CHECK(max_abs_diff(causal(tokens), causal(changed)) < 1e-12);
  CHECK(max_abs_diff(bidirectional(tokens), bidirectional(changed)) > 1e-4);
  // Changing a token before position k does change the pooled features.
  torch::Tensor earlier = tokens.clone();
  earlier.select(1, 2).add_(1);
  CHECK(max_abs_diff(causal(tokens), causal(earlier)) > 1e-4);
}

TEST_CASE("eot pooling takes the first EOT, last pooling the last position", "[models][text]") {
  torch::manual_seed(22);
  config::TextConfig config = test::tiny_config().text;
  TextTransformer by_eot = make_text(config);
  torch::Tensor tokens = test::make_tokens({3, 6, 11}, 12);
  tokens[0][8] = 49;  // a second EOT after the first one
  tokens[1][2] = 49;  // an EOT before the one make_tokens placed at 6
  CHECK(by_eot->pool_index(tokens).equal(torch::tensor({3, 2, 11}, torch::kLong)));

  // The pooled features are the ln_final output at those positions, projected.
  torch::Tensor x = by_eot->ln_final(
      by_eot->transformer(by_eot->token_embedding(tokens) + by_eot->positional_embedding, true));
  torch::Tensor expected = torch::stack({x[0][3], x[1][2], x[2][11]});
  CHECK(max_abs_diff(by_eot(tokens), torch::matmul(expected, by_eot->text_projection)) < 1e-12);

  config.pool = config::TextPool::kLast;
  config.causal = false;
  TextTransformer by_last = make_text(config);
  CHECK(by_last->pool_index(tokens).equal(torch::full({3}, 11, torch::kLong)));
  x = by_last->ln_final(by_last->transformer(
      by_last->token_embedding(tokens) + by_last->positional_embedding, false));
  CHECK(max_abs_diff(by_last(tokens), torch::matmul(x.select(1, 11), by_last->text_projection)) <
        1e-12);
  // Last pooling needs no EOT at all (SigLIP pads to the full context).
  torch::Tensor no_eot = torch::randint(0, 48, {2, 12}, torch::kLong);
  CHECK(by_last(no_eot).sizes() == torch::IntArrayRef({2, 24}));

  // SigLIP's text head: the projection with a bias.
  config.proj_bias = true;
  TextTransformer with_bias = make_text(config);
  {
    torch::NoGradGuard no_grad;
    auto params = with_bias->named_parameters();
    for (const auto& item : by_last->named_parameters()) {
      params[item.key()].copy_(item.value());
    }
  }
  REQUIRE(with_bias->text_projection_bias.sizes() == torch::IntArrayRef({24}));
  CHECK(with_bias->text_projection_bias.abs().max().item<double>() == 0.0);  // initialised to 0
  {
    torch::NoGradGuard no_grad;
    with_bias->text_projection_bias.uniform_(-1.0, 1.0);
  }
  CHECK(max_abs_diff(with_bias(tokens), by_last(tokens) + with_bias->text_projection_bias) < 1e-12);
}

TEST_CASE("bad token batches name the argument and the shapes", "[models][text]") {
  TextTransformer text(test::tiny_config().text, test::tiny_tokenizer(), 24,
                       AttentionKernel::kExplicit);
  const std::string expected = "tokens: expected [B, 12] int64, got ";
  const std::vector<std::pair<torch::Tensor, std::string>> shape_cases = {
      {torch::zeros({4, 77}, torch::kLong), "[4, 77] int64 cpu"},
      {torch::zeros({12}, torch::kLong), "[12] int64 cpu"},
      {torch::zeros({2, 12}, torch::kInt), "[2, 12] int32 cpu"},
      {torch::zeros({2, 12}, torch::kFloat), "[2, 12] float32 cpu"},
  };
  for (const auto& [tokens, got] : shape_cases) {
    auto caught = test::catch_error([&] { text(tokens); });
    REQUIRE(caught.thrown);
    CHECK(caught.message == expected + got);
  }

  torch::Tensor tokens = test::make_tokens({5, 5}, 12);
  tokens[1][3] = 50;
  auto caught = test::catch_error([&] { text(tokens); });
  CHECK(caught.message ==
        "tokens: ids must lie in [0, 50) (model.text.vocab_size), got 50 at row 1, position 3");
  tokens[1][3] = -1;
  caught = test::catch_error([&] { text(tokens); });
  CHECK_THAT(caught.message, Catch::Contains("got -1 at row 1, position 3"));

  tokens = test::make_tokens({5, 5, 5}, 12);
  tokens[2][5] = 0;
  caught = test::catch_error([&] { text(tokens); });
  CHECK(caught.kind == ErrorKind::kRuntime);
  CHECK_THAT(caught.message, Catch::StartsWith("tokens: row 2 has no end-of-text id 49"));
}

TEST_CASE("config errors: vocabulary mismatch and EOT id", "[models][text]") {
  config::TextConfig config = test::tiny_config().text;
  text::TokenizerInfo tokenizer = test::tiny_tokenizer();
  tokenizer.vocab_size = 49408;
  auto caught = test::catch_error(
      [&] { TextTransformer(config, tokenizer, 24, AttentionKernel::kExplicit); });
  REQUIRE(caught.thrown);
  CHECK(caught.kind == ErrorKind::kConfig);
  CHECK_THAT(caught.message,
             Catch::Contains("model.text.vocab_size (50)") && Catch::Contains("49408"));

  tokenizer = test::tiny_tokenizer();
  tokenizer.eot_id = -1;
  caught = test::catch_error(
      [&] { TextTransformer(config, tokenizer, 24, AttentionKernel::kExplicit); });
  CHECK(caught.kind == ErrorKind::kConfig);
  CHECK_THAT(caught.message, Catch::Contains("end-of-text id"));
  config.pool = config::TextPool::kLast;  // SigLIP-style pooling needs no EOT id
  CHECK_NOTHROW(TextTransformer(config, tokenizer, 24, AttentionKernel::kExplicit));
}

}  // namespace
}  // namespace duet::models
