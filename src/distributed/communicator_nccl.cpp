// NCCL: direct NCCL calls on the current CUDA stream of the rank's device, so collectives order
// with the surrounding LibTorch work without extra synchronisation; outputs are allocated by
// LibTorch's caching allocator on that same stream. The ncclUniqueId travels through rank 0's
// TCPStore. Collectives are asynchronous: a dead peer shows up as a hang, which the heartbeat
// (rendezvous.h) turns into an exit naming the rank; ncclCommAbort is not needed for that.
// Compiled only in builds with NCCL (src/distributed/CMakeLists.txt, CMake's DUET_WITH_NCCL).
#include <cuda_runtime.h>
#include <nccl.h>

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <fmt/format.h>

#include "common/error.h"
#include "distributed/communicator_backends.h"
#include "distributed/rendezvous.h"
#include "distributed/store_util.h"

// Every NCCL and CUDA call is checked with its expression, file and line.
#define DUET_NCCL_CHECK(expr)                                                                     \
  do {                                                                                            \
    const ncclResult_t duet_nccl_result = (expr);                                                 \
    if (duet_nccl_result != ncclSuccess) {                                                        \
      ::duet::fail("NCCL error '{}' in {} at {}:{}", ncclGetErrorString(duet_nccl_result), #expr, \
                   __FILE__, __LINE__);                                                           \
    }                                                                                             \
  } while (false)

#define DUET_CUDA_CHECK(expr)                                                                     \
  do {                                                                                            \
    const cudaError_t duet_cuda_result = (expr);                                                  \
    if (duet_cuda_result != cudaSuccess) {                                                        \
      ::duet::fail("CUDA error '{}' in {} at {}:{}", cudaGetErrorString(duet_cuda_result), #expr, \
                   __FILE__, __LINE__);                                                           \
    }                                                                                             \
  } while (false)

namespace duet::distributed {
namespace {

ncclDataType_t nccl_type(const torch::Tensor& t, const char* op) {
  switch (t.scalar_type()) {
    case torch::kFloat:
      return ncclFloat32;
    case torch::kDouble:
      return ncclFloat64;
    case torch::kHalf:
      return ncclFloat16;
    case torch::kBFloat16:
      return ncclBfloat16;
    case torch::kInt:
      return ncclInt32;
    case torch::kLong:
      return ncclInt64;
    case torch::kByte:
    case torch::kBool:
      return ncclUint8;
    case torch::kChar:
      return ncclInt8;
    default:
      fail("{}: NCCL has no type for {}", op, c10::toString(t.scalar_type()));
  }
}

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(const LaunchInfo& launch, std::chrono::milliseconds timeout,
                   const torch::Device& device)
      : rendezvous_(launch, timeout), device_(device) {
    DUET_CHECK(device_.is_cuda() && device_.has_index(),
               "nccl communicator: needs a CUDA device with an index, got {}", device_.str());
    c10::cuda::CUDAGuard guard(device_);
    ncclUniqueId id;
    const std::string key = "duet/nccl/unique_id";
    try {
      if (rank() == 0) {
        DUET_NCCL_CHECK(ncclGetUniqueId(&id));
        const auto* bytes = reinterpret_cast<const char*>(&id);
        rendezvous_.store()->set(key, as_bytes(std::string(bytes, sizeof(id))));
      } else {
        const auto value = rendezvous_.store()->get(key);
        DUET_CHECK(value.size() == sizeof(id), "nccl communicator: bad unique id from rank 0");
        std::copy(value.begin(), value.end(), reinterpret_cast<uint8_t*>(&id));
      }
      DUET_NCCL_CHECK(ncclCommInitRank(&comm_, world_size(), id, rank()));
    } catch (const std::exception& e) {
      rendezvous_.collective_failed("connecting NCCL", e.what());
    }
  }

  ~NcclCommunicator() override {
    rendezvous_.leave();  // unless finished: tell the others before the communicator goes
    if (comm_ != nullptr) {
      // Abort rather than destroy on the way out of an error: destroy waits for peers. Results
      // are not checked: a destructor cannot report them, and the process is leaving anyway.
      if (finished_) {
        ncclCommDestroy(comm_);
      } else {
        ncclCommAbort(comm_);
      }
    }
  }

  int rank() const override { return rendezvous_.rank(); }
  int world_size() const override { return rendezvous_.world_size(); }
  std::string backend() const override { return "nccl"; }

  torch::Tensor all_gather(const torch::Tensor& local) override {
    const torch::Tensor input = prepared(local, "all_gather");
    auto sizes = input.sizes().vec();
    DUET_CHECK(!sizes.empty(), "all_gather: needs a tensor with at least one dimension");
    sizes[0] *= world_size();
    torch::Tensor output = torch::empty(sizes, input.options());
    run("all_gather", [&](cudaStream_t stream) {
      DUET_NCCL_CHECK(ncclAllGather(input.data_ptr(), output.data_ptr(),
                                    static_cast<size_t>(input.numel()),
                                    nccl_type(input, "all_gather"), comm_, stream));
    });
    return output;
  }

  void all_reduce_sum(torch::Tensor& tensor) override {
    torch::Tensor work = prepared(tensor, "all_reduce_sum");
    run("all_reduce_sum", [&](cudaStream_t stream) {
      DUET_NCCL_CHECK(ncclAllReduce(work.data_ptr(), work.data_ptr(),
                                    static_cast<size_t>(work.numel()),
                                    nccl_type(work, "all_reduce_sum"), ncclSum, comm_, stream));
    });
    if (!work.is_same(tensor)) {
      tensor.copy_(work);
    }
  }

  torch::Tensor reduce_scatter_sum(const torch::Tensor& input) override {
    const torch::Tensor in = prepared(input, "reduce_scatter_sum");
    DUET_CHECK(in.dim() >= 1 && in.size(0) % world_size() == 0,
               "reduce_scatter_sum: input with {} rows is not a multiple of the world size {}",
               in.dim() >= 1 ? in.size(0) : 0, world_size());
    auto sizes = in.sizes().vec();
    sizes[0] /= world_size();
    torch::Tensor output = torch::empty(sizes, in.options());
    run("reduce_scatter_sum", [&](cudaStream_t stream) {
      DUET_NCCL_CHECK(
          ncclReduceScatter(in.data_ptr(), output.data_ptr(), static_cast<size_t>(output.numel()),
                            nccl_type(in, "reduce_scatter_sum"), ncclSum, comm_, stream));
    });
    return output;
  }

  void broadcast(torch::Tensor& tensor, int root) override {
    DUET_CHECK(root >= 0 && root < world_size(),
               "broadcast: root rank {} is outside the world of {} ranks", root, world_size());
    torch::Tensor work = prepared(tensor, "broadcast");
    run("broadcast", [&](cudaStream_t stream) {
      DUET_NCCL_CHECK(ncclBroadcast(work.data_ptr(), work.data_ptr(),
                                    static_cast<size_t>(work.numel()), nccl_type(work, "broadcast"),
                                    root, comm_, stream));
    });
    if (!work.is_same(tensor)) {
      tensor.copy_(work);
    }
  }

  void barrier() override {
    torch::Tensor one = torch::ones({1}, torch::TensorOptions().dtype(torch::kInt).device(device_));
    all_reduce_sum(one);
    c10::cuda::CUDAGuard guard(device_);
    DUET_CUDA_CHECK(cudaStreamSynchronize(c10::cuda::getCurrentCUDAStream(device_.index())));
  }

  std::vector<std::string> all_gather_text(const std::string& text) override {
    return rendezvous_.all_gather_text(text);
  }

  void finish() override {
    c10::cuda::CUDAGuard guard(device_);
    DUET_CUDA_CHECK(cudaStreamSynchronize(c10::cuda::getCurrentCUDAStream(device_.index())));
    rendezvous_.finish();
    finished_ = true;
  }

 private:
  // The tensor itself when it is contiguous and on this rank's device, else a contiguous copy
  // there (copied back by the in-place collectives).
  torch::Tensor prepared(const torch::Tensor& t, const char* op) const {
    DUET_CHECK(t.defined(), "{}: undefined tensor", op);
    DUET_CHECK(t.device() == device_, "{}: tensor on {} but this rank's NCCL device is {}", op,
               t.device().str(), device_.str());
    return t.contiguous();
  }

  template <class F>
  void run(const char* op, F&& enqueue) {
    c10::cuda::CUDAGuard guard(device_);
    try {
      enqueue(c10::cuda::getCurrentCUDAStream(device_.index()).stream());
    } catch (const std::exception& e) {
      rendezvous_.collective_failed(op, e.what());
    }
  }

  Rendezvous rendezvous_;
  torch::Device device_;
  ncclComm_t comm_ = nullptr;
  bool finished_ = false;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(const LaunchInfo& launch,
                                                     std::chrono::milliseconds timeout,
                                                     const torch::Device& device) {
  return std::make_unique<NcclCommunicator>(launch, timeout, device);
}

}  // namespace duet::distributed
