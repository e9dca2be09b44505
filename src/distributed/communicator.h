#pragma once
// One interface over the ways ranks talk to each other, chosen by make_communicator:
//   single  world size 1: every collective is the identity (no threads, no sockets)
//   gloo    LibTorch's c10d ProcessGroupGloo over TCP; CPU tensors (CUDA tensors are staged
//           through host memory)
//   nccl    direct NCCL calls on the current CUDA stream (builds with DUET_NCCL); CUDA tensors
// The multi-process backends meet at rank 0's c10d TCPStore (distributed/rendezvous.h), which
// also carries text (configs, checkpoint metadata) and the heartbeats that turn a dead or stopped
// rank into a prompt non-zero exit of every other rank, naming it (docs/distributed.md).
//
// Rules every caller follows (as with any collective library):
//  - every rank calls the same collectives in the same order with the same shapes and dtypes;
//  - tensors are contiguous and on the backend's device; all_gather and reduce_scatter_sum work
//    along dim 0 and need the same shape on every rank (gloo checks this and throws a runtime
//    Error on every rank when they differ; nccl trusts it);
//  - a collective that fails (a peer died, a timeout) throws a runtime Error after telling the
//    other ranks, whose heartbeat threads then end their processes (exit 1) with a message
//    naming the rank that went missing.
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "config/config.h"
#include "distributed/launch.h"

namespace duet::distributed {

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  virtual std::string backend() const = 0;  // "single", "gloo" or "nccl"

  // local [n, ...] -> [world_size * n, ...]: every rank's tensor, in rank order.
  virtual torch::Tensor all_gather(const torch::Tensor& local) = 0;
  // The same, as world_size tensors of local's shape.
  std::vector<torch::Tensor> all_gather_list(const torch::Tensor& local);

  // In place: tensor becomes the elementwise sum over ranks.
  virtual void all_reduce_sum(torch::Tensor& tensor) = 0;

  // input [world_size * n, ...] -> [n, ...]: block `rank` of the elementwise sum over ranks.
  // This is the adjoint of all_gather (gather-with-grad's backward).
  virtual torch::Tensor reduce_scatter_sum(const torch::Tensor& input) = 0;

  // In place: tensor becomes root's tensor on every rank.
  virtual void broadcast(torch::Tensor& tensor, int root) = 0;

  virtual void barrier() = 0;

  // Every rank's string, in rank order (through the rendezvous store; for configs and
  // checkpoint metadata, not bulk data).
  virtual std::vector<std::string> all_gather_text(const std::string& text) = 0;

  // Orderly shutdown, called by every rank at the end of a job: stops the heartbeat, waits
  // (up to the timeout) until all ranks got here and releases sockets. Destroying a
  // communicator without finish() (an exception unwinding) tells the others this rank left
  // with an error; they then stop too unless they are leaving as well.
  virtual void finish() = 0;
};

// The communicator for this launch: config.backend 'auto' picks single for one rank, nccl for a
// CUDA device when built with NCCL and gloo otherwise; 'none' needs world size 1; 'nccl' needs
// a build with NCCL and a CUDA device (device index = the rank's GPU). Joins the other ranks
// (waiting up to config.timeout_seconds; a rank that never arrives is named in the Error) and
// starts the heartbeat. Throws config Errors for impossible choices and runtime Errors for
// failed rendezvous.
std::unique_ptr<Communicator> make_communicator(const LaunchInfo& launch,
                                                const config::DistributedConfig& config,
                                                const torch::Device& device);

// True when this build has the NCCL backend.
bool nccl_available();

}  // namespace duet::distributed
