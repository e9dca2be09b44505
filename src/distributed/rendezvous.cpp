#include "distributed/rendezvous.h"

#include <unistd.h>

#include <algorithm>
#include <thread>

#include <fmt/format.h>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "common/error.h"
#include "common/logging.h"
#include "distributed/store_util.h"

namespace duet::distributed {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kPoll{50};

std::string join_key(int rank) { return "duet/join/" + std::to_string(rank); }

double seconds(milliseconds ms) { return static_cast<double>(ms.count()) / 1000.0; }

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) {
    return "unknown-host";
  }
  return name;
}

}  // namespace

Rendezvous::Rendezvous(const LaunchInfo& launch, milliseconds timeout, FailureHandler on_failure)
    : rank_(launch.rank),
      world_size_(launch.world_size),
      timeout_(timeout),
      on_failure_(std::move(on_failure)) {
  // One rank with an explicit backend has no launcher address: a private store on a free port.
  const std::string host = launch.master_addr.empty() ? "127.0.0.1" : launch.master_addr;
  const int port = launch.master_addr.empty() ? 0 : launch.master_port;
  DUET_CHECK(world_size_ == 1 || !launch.master_addr.empty(),
             "distributed: {} ranks but no rendezvous address (MASTER_ADDR)", world_size_);

  c10d::TCPStoreOptions options;
  options.port = static_cast<std::uint16_t>(port);
  options.isServer = rank_ == 0;
  options.waitWorkers = false;  // join() waits itself, so it can name who is missing
  options.timeout = timeout_;
  try {
    auto store = c10::make_intrusive<c10d::TCPStore>(host, options);
    address_ = fmt::format("{}:{}", host, store->getPort());
    store_ = store;
  } catch (const std::exception& e) {
    if (rank_ == 0) {
      fail(
          "rank 0 could not open the rendezvous store on port {} ({}); is another job using "
          "MASTER_PORT={}?",
          port, first_line(e.what()), port);
    }
    fail(
        "rank {} could not reach rank 0's rendezvous store at {}:{} within {} s: rank 0 never "
        "arrived, or MASTER_ADDR/MASTER_PORT are wrong ({})",
        rank_, host, port, seconds(timeout_), first_line(e.what()));
  }
  join();
  heartbeat_ = std::make_unique<Heartbeat>(store_->clone(), rank_, world_size_, timeout_, address_,
                                           on_failure_);
}

Rendezvous::~Rendezvous() { leave(); }

void Rendezvous::leave() noexcept {
  if (done_) {
    return;
  }
  done_ = true;
  if (heartbeat_) {
    heartbeat_->stop();
  }
  try {
    store_->set(keys::state(rank_), as_bytes("left"));
    if (rank_ == 0) {
      wait_for_others(std::min(timeout_, milliseconds(2000)));
    }
  } catch (const std::exception&) {
    // The store is gone already: nothing left to tell.
  }
}

void Rendezvous::join() {
  try {
    if (store_->add("duet/claim/" + std::to_string(rank_), 1) > 1) {
      fail(ErrorKind::kUsage,
           "two processes claim rank {} at the rendezvous {} (check RANK / SLURM_PROCID / "
           "OMPI_COMM_WORLD_RANK)",
           rank_, address_);
    }
    // State and heartbeat exist before the join key, so rank 0's watcher finds them all.
    store_->set(keys::state(rank_), as_bytes("running"));
    store_->add(keys::heartbeat(rank_), 0);
    store_->set(join_key(rank_),
                as_bytes(fmt::format("{} {} {}", world_size_, host_name(), getpid())));

    std::vector<std::string> all;
    for (int i = 0; i < world_size_; ++i) {
      all.push_back(join_key(i));
    }
    const auto deadline = Clock::now() + timeout_;
    while (!store_->check(all)) {
      if (Clock::now() >= deadline) {
        std::vector<int> missing;
        for (int i = 0; i < world_size_; ++i) {
          if (!store_->check({join_key(i)})) {
            missing.push_back(i);
          }
        }
        const int joined = world_size_ - static_cast<int>(missing.size());
        // Rank 0 keeps the store up until the others have seen the timeout too.
        const int64_t gave_up = store_->add("duet/join/gave_up", 1);
        if (rank_ == 0) {
          const auto linger = Clock::now() + std::min(timeout_, milliseconds(2000));
          int64_t seen = gave_up;
          while (seen < joined && Clock::now() < linger) {
            std::this_thread::sleep_for(kPoll);
            seen = store_->add("duet/join/gave_up", 0);
          }
        }
        fail(
            "rendezvous at {} timed out after {} s: {} never arrived ({} of {} ranks joined; "
            "distributed.timeout_seconds)",
            address_, seconds(timeout_), name_ranks(missing), joined, world_size_);
      }
      std::this_thread::sleep_for(kPoll);
    }
    const auto values = store_->multiGet(all);
    for (int i = 0; i < world_size_; ++i) {
      const std::string value = as_text(values[static_cast<size_t>(i)]);
      const std::string their_world = value.substr(0, value.find(' '));
      if (their_world != std::to_string(world_size_)) {
        fail(ErrorKind::kUsage,
             "rank {} was launched with world size {} but rank {} with {} (joined as '{}')", rank_,
             world_size_, i, their_world, value);
      }
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail("rank {}: rendezvous at {} failed: {} (rank 0 has probably exited)", rank_, address_,
         first_line(e.what()));
  }
  log::get("distributed")
      ->debug("rank {} of {} joined the rendezvous at {}", rank_, world_size_, address_);
}

std::vector<std::string> Rendezvous::all_gather_text(const std::string& text) {
  const int64_t round = text_round_++;
  auto key = [round](int rank) { return fmt::format("duet/text/{}/{}", round, rank); };
  std::vector<std::string> texts;
  try {
    store_->set(key(rank_), as_bytes(text));
    for (int i = 0; i < world_size_; ++i) {
      texts.push_back(as_text(store_->get(key(i))));
    }
  } catch (const std::exception& e) {
    collective_failed("all_gather_text", first_line(e.what()));
  }
  return texts;
}

void Rendezvous::collective_failed(const std::string& op, const std::string& what) {
  const std::string message = fmt::format("rank {}: {} failed: {}", rank_, op, first_line(what));
  try {
    store_->append(keys::kFailures, as_bytes(message + "\n"));
  } catch (const std::exception&) {
    // Rank 0's store is gone; the heartbeat reports that.
  }
  // The heartbeat usually ends the process with a verdict naming the missing rank; wait for it.
  const auto deadline = Clock::now() + timeout_;
  while (Clock::now() < deadline) {
    std::this_thread::sleep_for(kPoll);
  }
  fail("{}", message);
}

std::vector<int> Rendezvous::wait_for_others(milliseconds limit) {
  std::vector<std::string> names;
  for (int i = 0; i < world_size_; ++i) {
    names.push_back(keys::state(i));
  }
  const auto deadline = Clock::now() + limit;
  while (true) {
    const auto values = store_->multiGet(names);
    std::vector<int> running;
    for (int i = 0; i < world_size_; ++i) {
      if (i != rank_ && as_text(values[static_cast<size_t>(i)]) == "running") {
        running.push_back(i);
      }
    }
    if (running.empty() || Clock::now() >= deadline) {
      return running;
    }
    std::this_thread::sleep_for(kPoll);
  }
}

void Rendezvous::finish() {
  if (done_) {
    return;
  }
  done_ = true;
  std::vector<int> unfinished;
  try {
    // A store-side barrier with the heartbeat still on: nobody tears down its sockets while a
    // peer may still be inside the last collective, and a rank dying now still ends the job.
    store_->set(keys::state(rank_), as_bytes("finished"));
    unfinished = wait_for_others(timeout_);
    heartbeat_->stop();
    const int64_t closed = store_->add("duet/closed", 1);
    if (rank_ == 0) {
      // The store lives in this process: keep it until every rank has made its last call.
      const auto deadline = Clock::now() + std::min(timeout_, milliseconds(5000));
      int64_t seen = closed;
      while (seen < world_size_ && Clock::now() < deadline) {
        std::this_thread::sleep_for(milliseconds(10));
        seen = store_->add("duet/closed", 0);
      }
    }
  } catch (const std::exception& e) {
    heartbeat_->stop();
    fail("rank {}: leaving the job failed: {} (rank 0 has probably exited)", rank_,
         first_line(e.what()));
  }
  if (!unfinished.empty()) {
    fail("rank {}: {} did not finish within {} s (distributed.timeout_seconds)", rank_,
         name_ranks(unfinished), seconds(timeout_));
  }
}

}  // namespace duet::distributed
