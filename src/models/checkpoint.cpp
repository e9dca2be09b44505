// Gradient checkpointing as a torch::autograd::Function (see checkpoint.h for the contract).
// Forward inputs: the call (a non-tensor), the block input and the block's parameters, so the
// autograd node has an edge to every parameter and backward returns one gradient per input.
#include "models/checkpoint.h"

#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include "common/autocast.h"

namespace duet::models {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The recomputable call, kept alive by the autograd node until backward has run. A capsule is
// the one IValue that holds an arbitrary C++ object without registering a TorchScript class.
struct CheckpointedCall : torch::CustomClassHolder {
  explicit CheckpointedCall(CheckpointedFn f) : fn(std::move(f)) {}
  CheckpointedFn fn;
};

class CheckpointFunction : public torch::autograd::Function<CheckpointFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, c10::intrusive_ptr<CheckpointedCall> call,
                               const torch::Tensor& input, at::TensorList parameters) {
    const at::DeviceType device = input.device().type();
    bool autocast = false;
    at::ScalarType autocast_dtype = at::kFloat;
#if DUET_TORCH_AT_LEAST(2, 4)
    autocast = at::autocast::is_autocast_enabled(device);
    autocast_dtype = at::autocast::get_autocast_dtype(device);
#endif
    ctx->saved_data["call"] = c10::IValue::make_capsule(call);
    ctx->saved_data["autocast"] = autocast;
    ctx->saved_data["autocast_dtype"] = static_cast<int64_t>(autocast_dtype);
    variable_list to_save{input};
    to_save.insert(to_save.end(), parameters.begin(), parameters.end());
    ctx->save_for_backward(to_save);
    // Function::apply already runs forward without grad; the guard states the intent.
    torch::NoGradGuard no_grad;
    return call->fn(input);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto call =
        c10::static_intrusive_pointer_cast<CheckpointedCall>(ctx->saved_data["call"].toCapsule());
    variable_list saved = ctx->get_saved_variables();  // input, then the parameters
    // The block input becomes a fresh leaf so the recomputed graph ends there; the parameters
    // are the module's own leaves, so differentiating with respect to them is direct.
    saved[0] = saved[0].detach().requires_grad_(saved[0].requires_grad());

    // Differentiate only what needs a gradient; the rest gets an undefined one.
    variable_list wrt;
    std::vector<size_t> wrt_index;
    for (size_t i = 0; i < saved.size(); ++i) {
      if (saved[i].requires_grad()) {
        wrt.push_back(saved[i]);
        wrt_index.push_back(i);
      }
    }

    torch::Tensor output;
    {
      AutocastScope autocast(
          saved[0].device().type(), ctx->saved_data["autocast"].toBool(),
          static_cast<at::ScalarType>(ctx->saved_data["autocast_dtype"].toInt()));
      torch::AutoGradMode grad_mode(true);
      output = call->fn(saved[0]);
    }
    variable_list grads = torch::autograd::grad({output}, wrt, {grad_outputs[0]},
                                                /*retain_graph=*/false, /*create_graph=*/false,
                                                /*allow_unused=*/true);

    // One slot per forward input: the call (never differentiable), the input, each parameter.
    variable_list result(1 + saved.size());
    for (size_t j = 0; j < wrt_index.size(); ++j) {
      result[1 + wrt_index[j]] = grads[j];
    }
    return result;
  }
};

}  // namespace

at::Tensor checkpoint(CheckpointedFn fn, const at::Tensor& input,
                      const std::vector<at::Tensor>& parameters) {
  if (!torch::GradMode::is_enabled()) {
    return fn(input);
  }
  return CheckpointFunction::apply(c10::make_intrusive<CheckpointedCall>(std::move(fn)), input,
                                   at::TensorList(parameters));
}

}  // namespace duet::models
