#pragma once
// Liveness of a multi-process job, through rank 0's TCPStore and independent of the collectives
// (which can block for as long as their timeout when a peer is gone or stopped):
//  - every rank's beat thread bumps `duet/hb/<rank>` every interval on its own store connection
//    and ends the process (through FailureHandler) when `duet/abort` appears;
//  - rank 0's beat thread also watches everyone: a running rank whose counter has not moved for
//    `stale` (timeout minus three intervals), or one that left with an error
//    (`duet/state/<rank>` = "left"), makes it post `duet/abort` with a message naming the rank;
//    once a rank reported a failed collective (`duet/failures`), a shorter limit applies, since
//    the reporter is usually waiting for exactly this verdict;
//  - every rank's watchdog thread ends the process when its own beat thread has not completed a
//    round for `stale`: rank 0, which hosts the store, has stopped (SIGSTOP) or its host is
//    unreachable. A store connection that fails outright means rank 0's process has gone.
// So a dead or stopped rank makes every other rank exit within distributed.timeout_seconds.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include <torch/csrc/distributed/c10d/Store.hpp>

namespace duet::distributed {

// Called (once, from whichever thread sees it first) with a message saying which rank is missing
// and why; the default logs it and ends the process with exit code 1 without unwinding (the main
// thread may be blocked inside a collective that would never return).
using FailureHandler = std::function<void(const std::string& message)>;
FailureHandler exit_on_failure();

// Store keys shared by the rendezvous and the heartbeat.
namespace keys {
std::string heartbeat(int rank);                   // counter bumped every interval
std::string state(int rank);                       // "running", "finished" or "left"
inline const char* kAbort = "duet/abort";          // the verdict, posted by rank 0
inline const char* kAbortAcks = "duet/abort/ack";  // ranks that saw it
inline const char* kFailures = "duet/failures";    // appended "rank r: ..." lines
}  // namespace keys

struct HeartbeatTiming {
  std::chrono::milliseconds interval;  // between beats
  std::chrono::milliseconds stale;     // no beat for this long: the rank is missing
  std::chrono::milliseconds suspect;   // the same once a failure has been reported

  // interval = timeout / 10 within [50 ms, 1 s]; stale = timeout - 3 intervals: the verdict
  // comes at most one interval after that, every rank reads it within another, and rank 0
  // waits at most two for their acknowledgements, so every rank exits within the timeout.
  static HeartbeatTiming for_timeout(std::chrono::milliseconds timeout);
};

class Heartbeat {
 public:
  // `store` is this thread's own client connection; `store_address` ("host:port") and
  // `timeout_seconds` appear in messages.
  Heartbeat(c10::intrusive_ptr<c10d::Store> store, int rank, int world_size,
            std::chrono::milliseconds timeout, std::string store_address,
            FailureHandler on_failure);
  ~Heartbeat();
  Heartbeat(const Heartbeat&) = delete;
  Heartbeat& operator=(const Heartbeat&) = delete;

  // Stops and joins both threads (idempotent).
  void stop();

  const HeartbeatTiming& timing() const { return timing_; }

 private:
  void beat_loop();
  void watchdog_loop();
  // Rank 0: one look at every rank's counter and state; posts the verdict when one is missing.
  void watch_ranks();
  void post_abort(const std::string& message);
  void raise(const std::string& message);

  c10::intrusive_ptr<c10d::Store> store_;
  int rank_;
  int world_size_;
  std::chrono::milliseconds timeout_;
  HeartbeatTiming timing_;
  std::string store_address_;
  FailureHandler on_failure_;

  std::atomic<bool> stopping_{false};
  std::atomic<bool> raised_{false};
  std::atomic<int64_t> last_round_ns_{0};  // steady clock, end of the last completed round
  std::mutex mutex_;
  std::condition_variable wake_;

  // Rank 0's view of the others.
  struct Peer {
    int64_t count = -1;
    std::chrono::steady_clock::time_point changed;
    std::chrono::steady_clock::time_point left_at{};
    bool left = false;
  };
  std::vector<Peer> peers_;
  std::chrono::steady_clock::time_point failure_seen_{};
  bool failure_reported_ = false;

  std::thread beat_thread_;
  std::thread watchdog_thread_;
};

}  // namespace duet::distributed
