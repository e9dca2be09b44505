#include "distributed/heartbeat.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <fmt/format.h>

#include "common/logging.h"
#include "distributed/store_util.h"

namespace duet::distributed {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

FailureHandler exit_on_failure() {
  return [](const std::string& message) {
    auto logger = log::get("distributed");
    logger->critical("{}", message);
    logger->flush();
    std::fflush(stderr);
    std::fflush(stdout);
    std::_Exit(1);
  };
}

namespace keys {
std::string heartbeat(int rank) { return "duet/hb/" + std::to_string(rank); }
std::string state(int rank) { return "duet/state/" + std::to_string(rank); }
}  // namespace keys

HeartbeatTiming HeartbeatTiming::for_timeout(milliseconds timeout) {
  HeartbeatTiming t;
  t.interval = std::clamp(timeout / 10, milliseconds(50), milliseconds(1000));
  t.stale = std::max(timeout - 3 * t.interval, 3 * t.interval);
  t.suspect = std::min(t.stale, std::max(4 * t.interval, milliseconds(1000)));
  return t;
}

Heartbeat::Heartbeat(c10::intrusive_ptr<c10d::Store> store, int rank, int world_size,
                     milliseconds timeout, std::string store_address, FailureHandler on_failure)
    : store_(std::move(store)),
      rank_(rank),
      world_size_(world_size),
      timeout_(timeout),
      timing_(HeartbeatTiming::for_timeout(timeout)),
      store_address_(std::move(store_address)),
      on_failure_(std::move(on_failure)) {
  last_round_ns_ = now_ns();
  if (rank_ == 0) {
    peers_.assign(static_cast<size_t>(world_size_), Peer{-1, Clock::now(), {}, false});
  }
  beat_thread_ = std::thread([this] { beat_loop(); });
  watchdog_thread_ = std::thread([this] { watchdog_loop(); });
}

Heartbeat::~Heartbeat() { stop(); }

void Heartbeat::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (beat_thread_.joinable()) {
    beat_thread_.join();
  }
  if (watchdog_thread_.joinable()) {
    watchdog_thread_.join();
  }
}

void Heartbeat::raise(const std::string& message) {
  if (stopping_ || raised_.exchange(true)) {
    return;
  }
  on_failure_(fmt::format("rank {} stops: {}", rank_, message));
  // A handler that returns (tests) leaves the threads to wind down.
  stopping_ = true;
  wake_.notify_all();
}

void Heartbeat::beat_loop() {
  while (!stopping_) {
    try {
      store_->add(keys::heartbeat(rank_), 1);
      if (rank_ == 0) {
        watch_ranks();
      }
      if (store_->check({keys::kAbort})) {
        const std::string verdict = as_text(store_->get(keys::kAbort));
        store_->add(keys::kAbortAcks, 1);
        raise(verdict);
        return;
      }
      last_round_ns_ = now_ns();
    } catch (const std::exception& e) {
      if (stopping_) {
        return;
      }
      if (rank_ == 0) {
        raise(fmt::format("the rendezvous store at {} failed: {}", store_address_,
                          first_line(e.what())));
      } else {
        raise(fmt::format(
            "lost rank 0: its rendezvous store at {} failed ({}); rank 0 has exited or its host "
            "is unreachable",
            store_address_, first_line(e.what())));
      }
      return;
    }
    std::unique_lock<std::mutex> lock(mutex_);
    wake_.wait_for(lock, timing_.interval, [this] { return stopping_.load(); });
  }
}

void Heartbeat::watchdog_loop() {
  while (!stopping_) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait_for(lock, timing_.interval, [this] { return stopping_.load(); });
    }
    if (stopping_) {
      return;
    }
    const auto silent = std::chrono::nanoseconds(now_ns() - last_round_ns_.load());
    if (silent > timing_.stale) {
      raise(fmt::format(
          "rank 0 stopped answering: its rendezvous store at {} has not answered for {:.1f} s "
          "(rank 0 was stopped, hangs, or its host is unreachable; distributed.timeout_seconds "
          "= {})",
          store_address_, seconds(silent), timeout_.count() / 1000.0));
      return;
    }
  }
}

void Heartbeat::watch_ranks() {
  std::vector<std::string> names;
  for (int i = 0; i < world_size_; ++i) {
    names.push_back(keys::heartbeat(i));
  }
  for (int i = 0; i < world_size_; ++i) {
    names.push_back(keys::state(i));
  }
  const auto values = store_->multiGet(names);
  const auto now = Clock::now();
  if (!failure_reported_ && store_->check({keys::kFailures})) {
    failure_reported_ = true;
    failure_seen_ = now;
  }
  const auto limit = failure_reported_ ? timing_.suspect : timing_.stale;
  // A rank that left with an error gets a moment before the verdict: when every rank fails the
  // same way (different configs), they all leave together and each should report its own error.
  const auto left_grace = std::min(timing_.stale / 2, milliseconds(2000));

  std::vector<int> missing;
  std::vector<int> left;
  int running = 0;
  Clock::duration longest{};
  for (int i = 1; i < world_size_; ++i) {
    Peer& peer = peers_[static_cast<size_t>(i)];
    const std::string state = as_text(values[static_cast<size_t>(world_size_ + i)]);
    if (state == "finished") {
      continue;
    }
    if (state == "left") {
      if (!peer.left) {
        peer.left = true;
        peer.left_at = now;
      }
      if (now - peer.left_at >= left_grace) {
        left.push_back(i);
      }
      continue;
    }
    const int64_t count = std::stoll(as_text(values[static_cast<size_t>(i)]));
    if (count != peer.count) {
      peer.count = count;
      peer.changed = now;
    } else if (now - peer.changed >= limit) {
      missing.push_back(i);
      longest = std::max(longest, now - peer.changed);
      continue;
    }
    ++running;
  }

  std::string failures;
  if (failure_reported_) {
    // "rank 1: ...\nrank 2: ...\n" -> "rank 1: ...; rank 2: ..."
    for (char c : as_text(store_->get(keys::kFailures))) {
      failures += c == '\n' ? std::string("; ") : std::string(1, c);
    }
    while (!failures.empty() && (failures.back() == ' ' || failures.back() == ';')) {
      failures.pop_back();
    }
  }
  std::string verdict;
  if (!missing.empty()) {
    verdict = fmt::format(
        "{} stopped answering: no heartbeat for {:.1f} s (dead, stopped or hung; "
        "distributed.timeout_seconds = {})",
        name_ranks(missing), seconds(longest), timeout_.count() / 1000.0);
  } else if (!left.empty()) {
    verdict = fmt::format("{} left the job with an error (see {} log)", name_ranks(left),
                          left.size() == 1 ? "its" : "their");
  } else if (failure_reported_ && now - failure_seen_ >= timing_.stale) {
    verdict = "a collective failed and no rank is missing";
  }
  if (verdict.empty()) {
    return;
  }
  if (!failures.empty()) {
    verdict += "; reported: " + failures;
  }
  post_abort(verdict);
  // Let the others read the verdict before this process (and with it the store) goes away.
  const auto deadline = Clock::now() + 2 * timing_.interval;
  while (Clock::now() < deadline && store_->add(keys::kAbortAcks, 0) < running) {
    last_round_ns_ = now_ns();
    std::this_thread::sleep_for(milliseconds(20));
  }
}

void Heartbeat::post_abort(const std::string& message) {
  store_->set(keys::kAbort, as_bytes(message));
}

}  // namespace duet::distributed
