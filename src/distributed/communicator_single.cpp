// World size 1: every collective is the identity, so one process runs the same code as many.
#include "distributed/communicator_backends.h"

#include "common/error.h"

namespace duet::distributed {
namespace {

class SingleCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  std::string backend() const override { return "single"; }

  torch::Tensor all_gather(const torch::Tensor& local) override { return local; }
  void all_reduce_sum(torch::Tensor&) override {}
  torch::Tensor reduce_scatter_sum(const torch::Tensor& input) override { return input; }
  void broadcast(torch::Tensor&, int root) override {
    DUET_CHECK(root == 0, "broadcast: root rank {} is outside the world of 1 rank", root);
  }
  void barrier() override {}
  std::vector<std::string> all_gather_text(const std::string& text) override { return {text}; }
  void finish() override {}
};

}  // namespace

std::unique_ptr<Communicator> make_single_communicator() {
  return std::make_unique<SingleCommunicator>();
}

}  // namespace duet::distributed
