#include "distributed/gather.h"

#include <cstdint>

#include <torch/autograd.h>

namespace duet::distributed {
namespace {

// The communicator rides in ctx->saved_data, which holds IValues only, as an integer; it is
// only read back within the same process while the caller keeps it alive.
constexpr const char* kCommunicator = "communicator";

struct AllGatherWithGrad : public torch::autograd::Function<AllGatherWithGrad> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& local,
                               int64_t communicator) {
    ctx->saved_data[kCommunicator] = communicator;
    return reinterpret_cast<Communicator*>(communicator)->all_gather(local.contiguous());
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grad_outputs) {
    auto* communicator = reinterpret_cast<Communicator*>(ctx->saved_data[kCommunicator].toInt());
    torch::Tensor grad_local = communicator->reduce_scatter_sum(grad_outputs[0].contiguous());
    return {grad_local, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor all_gather_with_grad(Communicator& communicator, const torch::Tensor& local) {
  if (communicator.world_size() == 1) {
    return local;
  }
  return AllGatherWithGrad::apply(local, reinterpret_cast<int64_t>(&communicator));
}

}  // namespace duet::distributed
