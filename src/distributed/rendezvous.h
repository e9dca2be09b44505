#pragma once
// How the ranks of a job find each other and stay in touch, shared by the gloo and nccl
// communicators (an implementation header: it pulls in c10d, so public headers do not include
// it). Rank 0 hosts a c10d TCPStore on MASTER_PORT; every rank connects to it and
//  1. joins: claims `duet/join/<rank>` (two processes claiming one rank is an Error) and waits
//     until every rank has joined, up to the timeout; the Error names the ranks that never came.
//     A rank that cannot reach rank 0's store within the timeout names rank 0. Ranks launched
//     with different world sizes are refused;
//  2. starts its heartbeat (distributed/heartbeat.h) on a second store connection;
//  3. carries small text exchanges (all_gather_text) and failure reports;
//  4. leaves: finish() marks the rank finished, and rank 0 keeps the store up until every rank
//     has finished (or left, or the timeout passed). Destroying a Rendezvous that did not finish
//     marks the rank as having left with an error, which ends the job unless all ranks leave.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/csrc/distributed/c10d/Store.hpp>

#include "distributed/heartbeat.h"
#include "distributed/launch.h"

namespace duet::distributed {

class Rendezvous {
 public:
  Rendezvous(const LaunchInfo& launch, std::chrono::milliseconds timeout,
             FailureHandler on_failure = exit_on_failure());
  ~Rendezvous();
  Rendezvous(const Rendezvous&) = delete;
  Rendezvous& operator=(const Rendezvous&) = delete;

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  std::chrono::milliseconds timeout() const { return timeout_; }
  // This rank's connection to the store (on rank 0 the store itself).
  const c10::intrusive_ptr<c10d::Store>& store() const { return store_; }
  // "host:port"
  const std::string& address() const { return address_; }

  std::vector<std::string> all_gather_text(const std::string& text);

  // A collective failed on this rank: report it to the others (rank 0's heartbeat turns it into
  // a verdict naming the missing rank when there is one) and give the heartbeat until the
  // timeout to end the process; then throw a runtime Error with `op` and `what`.
  [[noreturn]] void collective_failed(const std::string& op, const std::string& what);

  // Orderly end (see above). Throws a runtime Error on rank 0 when some rank did not finish
  // within the timeout.
  void finish();

  // Leaving with an error (the destructor does it too; idempotent, never throws): stops the
  // heartbeat and marks this rank "left", and on rank 0 keeps the store up for a moment so that
  // ranks leaving for the same reason report their own error rather than a lost rank 0.
  // Communicators call it before closing their own connections, so that peers learn that this
  // rank left rather than seeing it vanish.
  void leave() noexcept;

 private:
  void join();
  // Rank 0: waits until every other rank's state is no longer "running" or `limit` passed;
  // returns the ranks still running.
  std::vector<int> wait_for_others(std::chrono::milliseconds limit);

  int rank_;
  int world_size_;
  std::chrono::milliseconds timeout_;
  std::string address_;
  FailureHandler on_failure_;
  c10::intrusive_ptr<c10d::Store> store_;
  std::unique_ptr<Heartbeat> heartbeat_;
  int64_t text_round_ = 0;
  bool done_ = false;
};

}  // namespace duet::distributed
