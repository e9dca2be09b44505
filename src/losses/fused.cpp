// The fused engine (engines.h): the torch-facing op over the CUDA kernels of kernels/
// (contrastive_kernels.h). It checks device, dtype and shapes with messages naming the argument,
// makes the operands contiguous, allocates outputs and the kernels' workspace on the embeddings'
// device, and launches on the current CUDA stream. Nothing is read back to the host.
// In builds without the kernels (DUET_CUDA off) every entry point is a config Error; the
// dispatch (implementation.h) never selects them there.
#include "common/error.h"
#include "common/tensor_text.h"
#include "duet/build_info.h"
#include "losses/engines.h"

#if DUET_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/torch.h>

#include <stdexcept>

#include "kernels/contrastive_kernels.h"
#endif

namespace duet::losses::detail {

#if DUET_CUDA
namespace {

kernels::DType kernel_dtype(const char* op, const char* name, const torch::Tensor& t) {
  switch (t.scalar_type()) {
    case torch::kFloat32:
      return kernels::DType::kFloat32;
    case torch::kBFloat16:
      return kernels::DType::kBFloat16;
    case torch::kFloat16:
      return kernels::DType::kFloat16;
    default:
      fail(
          "{}: {} must be float32, bfloat16 or float16 for the fused kernels, got {} (use "
          "loss.implementation 'tiled' or 'auto' for float64)",
          op, name, describe(t));
  }
}

// A 2-D input of the kernels: on `device`, of `dtype`, contiguous.
torch::Tensor operand(const char* op, const char* name, const torch::Tensor& t,
                      const torch::Device& device, torch::ScalarType dtype) {
  DUET_CHECK(t.device() == device && t.device().is_cuda(),
             "{}: {} must be on the CUDA device {} like the other embeddings, got {}", op, name,
             device.str(), describe(t));
  DUET_CHECK(t.scalar_type() == dtype, "{}: {} must have the other embeddings' dtype, got {}", op,
             name, describe(t));
  return t.detach().contiguous();
}

// A 0-dim device scalar as float32 (the kernels read log t, b and the upstream gradient so).
torch::Tensor scalar(const char* op, const char* name, const torch::Tensor& t,
                     const torch::Device& device) {
  DUET_CHECK(t.defined() && t.dim() == 0 && t.device() == device,
             "{}: {} must be a 0-dim tensor on {}, got {}", op, name, device.str(), describe(t));
  return t.detach().to(torch::kFloat32).contiguous();
}

// The operands as the kernels take them; owns the contiguous copies it points into.
struct Operands {
  torch::Tensor image_local, text_local, image_all, text_all, log_scale, bias;
  kernels::LossOperands view;
};

Operands prepare(const char* op, const torch::Tensor& x_local, const torch::Tensor& y_local,
                 const torch::Tensor& x_all, const torch::Tensor& y_all, int64_t offset,
                 bool one_process, const torch::Tensor& logit_scale,
                 const torch::Tensor& logit_bias) {
  const torch::Device device = x_local.device();
  DUET_CHECK(device.is_cuda(),
             "{}: the fused kernels run on CUDA devices; the embeddings are on {}", op,
             device.str());
  const auto dtype = x_local.scalar_type();
  Operands o;
  o.view.dtype = kernel_dtype(op, "the embeddings", x_local);
  o.image_local = operand(op, "image_local", x_local, device, dtype);
  o.view.image_local = o.image_local.data_ptr();
  if (y_local.defined()) {
    o.text_local = operand(op, "text_local", y_local, device, dtype);
    o.view.text_local = o.text_local.data_ptr();
  } else {  // SigLIP reads no local texts; any valid pointer satisfies the launcher
    o.view.text_local = o.image_local.data_ptr();
  }
  if (!one_process) {
    if (x_all.defined()) {
      o.image_all = operand(op, "image_all", x_all, device, dtype);
      o.view.image_all = o.image_all.data_ptr();
    } else {
      o.view.image_all = o.image_local.data_ptr();
    }
    o.text_all = operand(op, "text_all", y_all, device, dtype);
    o.view.text_all = o.text_all.data_ptr();
  }
  o.view.n = x_local.size(0);
  o.view.m = one_process ? o.view.n : y_all.size(0);
  o.view.dim = x_local.size(1);
  o.view.offset = offset;
  o.view.one_process = one_process;
  o.log_scale = scalar(op, "logit_scale", logit_scale, device);
  o.view.log_scale = o.log_scale.data_ptr<float>();
  if (logit_bias.defined()) {
    o.bias = scalar(op, "logit_bias", logit_bias, device);
    o.view.bias = o.bias.data_ptr<float>();
  }
  return o;
}

Operands prepare(const char* op, const InfoNCEInputs& in) {
  return prepare(op, in.x_local, in.y_local, in.x_all, in.y_all, in.offset, in.one_process,
                 in.logit_scale, torch::Tensor());
}

Operands prepare(const char* op, const SigLipInputs& in) {
  // SigLIP's column operand is y (text_all; one process: the batch's texts, held as text_local).
  if (in.one_process) {
    return prepare(op, in.x_local, in.y_all, torch::Tensor(), torch::Tensor(), 0, true,
                   in.logit_scale, in.logit_bias);
  }
  return prepare(op, in.x_local, torch::Tensor(), torch::Tensor(), in.y_all, in.offset, false,
                 in.logit_scale, in.logit_bias);
}

torch::TensorOptions float32_on(const torch::Device& device) {
  return torch::TensorOptions().dtype(torch::kFloat32).device(device);
}

torch::Tensor workspace(std::size_t bytes, const torch::Device& device) {
  return torch::empty({static_cast<int64_t>(bytes > 0 ? bytes : 1)},
                      torch::TensorOptions().dtype(torch::kUInt8).device(device));
}

void* current_stream(const torch::Device& device) {
  return at::cuda::getCurrentCUDAStream(device.index()).stream();
}

torch::Tensor empty_if(bool wanted, const torch::Tensor& like) {
  return wanted ? torch::empty_like(like) : torch::Tensor();
}

void* pointer(const torch::Tensor& t) { return t.defined() ? t.data_ptr() : nullptr; }

float* float_pointer(const torch::Tensor& t) { return t.defined() ? t.data_ptr<float>() : nullptr; }

// Runs a launcher, turning its exceptions (bad arguments, CUDA errors) into duet's error.
template <class Launch>
void launch(const char* op, Launch&& run) {
  try {
    run();
  } catch (const std::exception& e) {
    fail("{} (fused CUDA kernels): {}", op, e.what());
  }
}

}  // namespace

InfoNCEForward infonce_forward_fused(const InfoNCEInputs& in) {
  constexpr const char* kOp = "infonce_loss";
  const c10::cuda::CUDAGuard guard(in.x_local.device());
  const Operands o = prepare(kOp, in);
  const auto device = in.x_local.device();
  InfoNCEForward out{torch::empty({}, float32_on(device)),
                     torch::empty({o.view.n}, float32_on(device)),
                     torch::empty({o.view.n}, float32_on(device))};
  const torch::Tensor space = workspace(
      kernels::infonce_forward_workspace_bytes(o.view.n, o.view.m, o.view.one_process), device);
  launch(kOp, [&] {
    kernels::gpu::infonce_forward({o.view, out.loss.data_ptr<float>(), out.lse_a.data_ptr<float>(),
                                   out.lse_b.data_ptr<float>(), space.data_ptr()},
                                  current_stream(device));
  });
  return out;
}

InfoNCEGrads infonce_backward_fused(const InfoNCEInputs& in, const InfoNCEForward& saved,
                                    const torch::Tensor& grad_output, InfoNCEWanted wanted) {
  constexpr const char* kOp = "infonce_loss backward";
  const c10::cuda::CUDAGuard guard(in.x_local.device());
  const Operands o = prepare(kOp, in);
  const auto device = in.x_local.device();
  const torch::Tensor go = scalar(kOp, "grad_output", grad_output, device);
  InfoNCEGrads grads;
  grads.x_local = empty_if(wanted.x_local, o.image_local);
  grads.y_local = empty_if(wanted.y_local, o.text_local);
  if (!in.one_process) {
    grads.x_all = empty_if(wanted.x_all, o.image_all);
    grads.y_all = empty_if(wanted.y_all, o.text_all);
  }
  const torch::Tensor d_log_scale =
      wanted.logit_scale ? torch::empty({}, float32_on(device)) : torch::Tensor();
  const torch::Tensor space = workspace(
      kernels::infonce_backward_workspace_bytes(o.view.n, o.view.m, o.view.one_process), device);
  kernels::InfoNCEBackwardParams params;
  params.in = o.view;
  params.lse_a = saved.lse_a.data_ptr<float>();
  params.lse_b = saved.lse_b.data_ptr<float>();
  params.grad_output = go.data_ptr<float>();
  params.d_image_local = pointer(grads.x_local);
  params.d_text_local = pointer(grads.y_local);
  params.d_image_all = pointer(grads.x_all);
  params.d_text_all = pointer(grads.y_all);
  params.d_log_scale = float_pointer(d_log_scale);
  params.workspace = space.data_ptr();
  launch(kOp, [&] { kernels::gpu::infonce_backward(params, current_stream(device)); });
  if (d_log_scale.defined()) {
    grads.logit_scale = d_log_scale.to(in.logit_scale.scalar_type());
  }
  return grads;
}

torch::Tensor siglip_forward_fused(const SigLipInputs& in) {
  constexpr const char* kOp = "siglip_loss";
  const c10::cuda::CUDAGuard guard(in.x_local.device());
  const Operands o = prepare(kOp, in);
  const auto device = in.x_local.device();
  torch::Tensor loss = torch::empty({}, float32_on(device));
  const torch::Tensor space = workspace(
      kernels::siglip_forward_workspace_bytes(o.view.n, o.view.m, o.view.one_process), device);
  launch(kOp, [&] {
    kernels::gpu::siglip_forward({o.view, loss.data_ptr<float>(), space.data_ptr()},
                                 current_stream(device));
  });
  return loss;
}

SigLipGrads siglip_backward_fused(const SigLipInputs& in, const torch::Tensor& grad_output,
                                  SigLipWanted wanted) {
  constexpr const char* kOp = "siglip_loss backward";
  const c10::cuda::CUDAGuard guard(in.x_local.device());
  const Operands o = prepare(kOp, in);
  const auto device = in.x_local.device();
  const torch::Tensor go = scalar(kOp, "grad_output", grad_output, device);
  SigLipGrads grads;
  grads.x_local = empty_if(wanted.x_local, o.image_local);
  grads.y_all = empty_if(wanted.y_all, in.one_process ? o.text_local : o.text_all);
  const torch::Tensor d_log_scale =
      wanted.logit_scale ? torch::empty({}, float32_on(device)) : torch::Tensor();
  const torch::Tensor d_bias =
      wanted.logit_bias ? torch::empty({}, float32_on(device)) : torch::Tensor();
  const torch::Tensor space = workspace(
      kernels::siglip_backward_workspace_bytes(o.view.n, o.view.m, o.view.one_process), device);
  kernels::SigLipBackwardParams params;
  params.in = o.view;
  params.grad_output = go.data_ptr<float>();
  params.d_image_local = pointer(grads.x_local);
  params.d_text_all = pointer(grads.y_all);
  params.d_log_scale = float_pointer(d_log_scale);
  params.d_logit_bias = float_pointer(d_bias);
  params.workspace = space.data_ptr();
  launch(kOp, [&] { kernels::gpu::siglip_backward(params, current_stream(device)); });
  if (d_log_scale.defined()) {
    grads.logit_scale = d_log_scale.to(in.logit_scale.scalar_type());
  }
  if (d_bias.defined()) {
    grads.logit_bias = d_bias.to(in.logit_bias.scalar_type());
  }
  return grads;
}

#else  // no kernels in this build

namespace {
[[noreturn]] void no_kernels(const char* op) {
  fail(ErrorKind::kConfig,
       "{}: this build has no fused CUDA kernels (configure with the CUDA toolkit); use "
       "loss.implementation 'auto', 'tiled' or 'reference'",
       op);
}
}  // namespace

InfoNCEForward infonce_forward_fused(const InfoNCEInputs&) { no_kernels("infonce_loss"); }
InfoNCEGrads infonce_backward_fused(const InfoNCEInputs&, const InfoNCEForward&,
                                    const torch::Tensor&, InfoNCEWanted) {
  no_kernels("infonce_loss backward");
}
torch::Tensor siglip_forward_fused(const SigLipInputs&) { no_kernels("siglip_loss"); }
SigLipGrads siglip_backward_fused(const SigLipInputs&, const torch::Tensor&, SigLipWanted) {
  no_kernels("siglip_loss backward");
}

#endif

}  // namespace duet::losses::detail
