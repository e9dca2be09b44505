// Gloo: LibTorch's c10d ProcessGroupGloo over TCP, for CPU tensors. CUDA tensors are staged
// through host memory (correct, not fast: GPU jobs use nccl). The wheel ships the compiled
// ProcessGroupGloo but not Gloo's headers; Debian's libgloo-dev provides those. Its
// gloo::rendezvous::Store has no "v2" API, so GLOO_STORE_HAS_STORE_V2 stays undefined: the
// header's inline GlooStore wrapper is then only the v1 interface, which we never instantiate
// (the wheel's own code builds its store wrapper).
#define USE_C10D_GLOO 1
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>

#include <fmt/format.h>

#include "common/error.h"
#include "distributed/communicator_backends.h"
#include "distributed/rendezvous.h"

namespace duet::distributed {
namespace {

// dtype and up to kMaxDims sizes of a tensor, so that ranks can compare what they pass in.
constexpr int64_t kMaxDims = 8;
constexpr int64_t kHeader = kMaxDims + 2;

std::string describe_header(const int64_t* h) {
  std::string shape = "[";
  for (int64_t d = 0; d < h[1]; ++d) {
    shape += (d ? ", " : "") + std::to_string(h[2 + d]);
  }
  return shape + "] " + std::string(c10::toString(static_cast<c10::ScalarType>(h[0])));
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

class GlooCommunicator final : public Communicator {
 public:
  GlooCommunicator(const LaunchInfo& launch, std::chrono::milliseconds timeout)
      : rendezvous_(launch, timeout) {
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    // GLOO_SOCKET_IFNAME picks the interface as in PyTorch; on one machine (loopback
    // rendezvous) stay on loopback, which works without a resolvable host name.
    if (!launch.gloo_interface.empty()) {
      options->devices.push_back(
          c10d::ProcessGroupGloo::createDeviceForInterface(launch.gloo_interface));
    } else if (launch.master_addr.empty() || is_loopback(launch.master_addr)) {
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    } else {
      options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    options->threads = 2;
    auto store = c10::make_intrusive<c10d::PrefixStore>("gloo", rendezvous_.store());
    try {
      group_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rendezvous_.rank(),
                                                           rendezvous_.world_size(), options);
    } catch (const std::exception& e) {
      rendezvous_.collective_failed("connecting Gloo", e.what());
    }
  }

  // Unless finished: tell the others this rank is leaving before its Gloo sockets close.
  ~GlooCommunicator() override { rendezvous_.leave(); }

  int rank() const override { return rendezvous_.rank(); }
  int world_size() const override { return rendezvous_.world_size(); }
  std::string backend() const override { return "gloo"; }

  torch::Tensor all_gather(const torch::Tensor& local) override {
    check_same_shape("all_gather", local);
    torch::Tensor input = staged(local);
    auto sizes = input.sizes().vec();
    sizes[0] *= world_size();
    torch::Tensor output = torch::empty(sizes, input.options());
    run("all_gather", [&] { return group_->_allgather_base(output, input); });
    return output.to(local.device());
  }

  void all_reduce_sum(torch::Tensor& tensor) override {
    DUET_CHECK(tensor.defined(), "all_reduce_sum: undefined tensor");
    const bool in_place = tensor.is_cpu() && tensor.is_contiguous();
    std::vector<torch::Tensor> tensors = {in_place ? tensor : staged(tensor)};
    c10d::AllreduceOptions opts;
    opts.reduceOp = c10d::ReduceOp::SUM;
    run("all_reduce_sum", [&] { return group_->allreduce(tensors, opts); });
    if (!in_place) {
      tensor.copy_(tensors[0]);
    }
  }

  torch::Tensor reduce_scatter_sum(const torch::Tensor& input) override {
    check_same_shape("reduce_scatter_sum", input);
    DUET_CHECK(input.dim() >= 1 && input.size(0) % world_size() == 0,
               "reduce_scatter_sum: input {} must have a multiple of the world size {} rows",
               fmt::format("{}", fmt::join(input.sizes(), ", ")), world_size());
    torch::Tensor in = staged(input);
    auto sizes = in.sizes().vec();
    sizes[0] /= world_size();
    torch::Tensor output = torch::empty(sizes, in.options());
    c10d::ReduceScatterOptions opts;
    opts.reduceOp = c10d::ReduceOp::SUM;
    run("reduce_scatter_sum", [&] { return group_->_reduce_scatter_base(output, in, opts); });
    return output.to(input.device());
  }

  void broadcast(torch::Tensor& tensor, int root) override {
    DUET_CHECK(root >= 0 && root < world_size(),
               "broadcast: root rank {} is outside the world of {} ranks", root, world_size());
    const bool in_place = tensor.is_cpu() && tensor.is_contiguous();
    std::vector<torch::Tensor> tensors = {in_place ? tensor : staged(tensor)};
    c10d::BroadcastOptions opts;
    opts.rootRank = root;
    run("broadcast", [&] { return group_->broadcast(tensors, opts); });
    if (!in_place) {
      tensor.copy_(tensors[0]);
    }
  }

  void barrier() override {
    run("barrier", [&] { return group_->barrier(); });
  }

  std::vector<std::string> all_gather_text(const std::string& text) override {
    return rendezvous_.all_gather_text(text);
  }

  void finish() override {
    rendezvous_.finish();
    group_.reset();
  }

 private:
  // A contiguous host copy (or the tensor itself when it is one already).
  static torch::Tensor staged(const torch::Tensor& t) { return t.contiguous().cpu(); }

  template <class F>
  void run(const char* op, F&& start) {
    try {
      start()->wait();
    } catch (const std::exception& e) {
      rendezvous_.collective_failed(op, e.what());
    }
  }

  // Every rank compares the dtypes and shapes all ranks passed; a mismatch throws on all of
  // them alike instead of leaving Gloo to hang or read past a buffer.
  void check_same_shape(const char* op, const torch::Tensor& t) {
    DUET_CHECK(t.defined() && t.dim() >= 1 && t.dim() <= kMaxDims,
               "{}: needs a tensor with 1 to {} dimensions", op, kMaxDims);
    torch::Tensor header = torch::full({kHeader}, -1, torch::kLong);
    auto h = header.accessor<int64_t, 1>();
    h[0] = static_cast<int64_t>(t.scalar_type());
    h[1] = t.dim();
    for (int64_t d = 0; d < t.dim(); ++d) {
      h[2 + d] = t.size(d);
    }
    torch::Tensor all = torch::empty({world_size() * kHeader}, torch::kLong);
    run(op, [&] { return group_->_allgather_base(all, header); });
    const int64_t* a = all.data_ptr<int64_t>();
    bool same = true;
    for (int r = 1; r < world_size() && same; ++r) {
      same = std::equal(a, a + kHeader, a + r * kHeader);
    }
    if (!same) {
      std::string shapes;
      for (int r = 0; r < world_size(); ++r) {
        shapes += fmt::format("{}rank {}: {}", r ? ", " : "", r, describe_header(a + r * kHeader));
      }
      fail(
          "{}: ranks passed different tensors ({}); every rank must pass the same shape and "
          "dtype",
          op, shapes);
    }
  }

  Rendezvous rendezvous_;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group_;
};

}  // namespace

std::unique_ptr<Communicator> make_gloo_communicator(const LaunchInfo& launch,
                                                     std::chrono::milliseconds timeout) {
  return std::make_unique<GlooCommunicator>(launch, timeout);
}

}  // namespace duet::distributed
