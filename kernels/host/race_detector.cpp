// Shared-memory race detector of the host execution layer (see race_detector.h).
#include "kernels/host/race_detector.h"

namespace duet::kernels::host {
namespace {

constexpr int kWarpSize = 32;

int warp_of(int thread) { return thread / kWarpSize; }
std::uint32_t lane_bit(int thread) { return 1u << (thread % kWarpSize); }

int lowest_lane(std::uint32_t lanes) { return __builtin_ctz(lanes); }

}  // namespace

const char* shared_op_name(SharedOp op) {
  switch (op) {
    case SharedOp::kLoad:
      return "smem_load";
    case SharedOp::kStore:
      return "smem_store";
    case SharedOp::kLdmatrix:
      return "ldmatrix";
    case SharedOp::kCpAsync:
      return "cp_async_16";
  }
  return "?";
}

bool is_write(SharedOp op) { return op == SharedOp::kStore || op == SharedOp::kCpAsync; }

void RaceDetector::begin_block(const unsigned char* dynamic, std::size_t dynamic_bytes) {
  dynamic_ = dynamic;
  dynamic_bytes_ = dynamic_bytes;
  if (dynamic_shadow_.size() < dynamic_bytes) {
    dynamic_shadow_.resize(dynamic_bytes);
  }
  static_shadow_.clear();
}

void RaceDetector::reset() {
  dynamic_shadow_.assign(dynamic_shadow_.size(), ShadowByte{});
  static_shadow_.clear();
}

std::optional<Race> RaceDetector::access(int thread, const void* p, std::size_t bytes, SharedOp op,
                                         AccessTime now) {
  const auto* first = static_cast<const unsigned char*>(p);
  const bool dynamic = dynamic_bytes_ > 0 && first >= dynamic_ && first < dynamic_ + dynamic_bytes_;
  std::optional<Race> found;
  for (std::size_t i = 0; i < bytes; ++i) {
    const auto address = reinterpret_cast<std::uintptr_t>(first + i);
    const std::uintptr_t where =
        dynamic ? static_cast<std::uintptr_t>(first + i - dynamic_) : address;
    ShadowByte& shadow = dynamic ? dynamic_shadow_[where] : static_shadow_[address];
    std::optional<Race> race = access_byte(shadow, thread, op, now);
    if (race && !found) {
      race->dynamic = dynamic;
      race->where = where;
      found = race;
    }
  }
  return found;
}

std::optional<Race> RaceDetector::access_byte(ShadowByte& shadow, int thread, SharedOp op,
                                              AccessTime now) {
  // An earlier access by `other` at (epoch, warp_epoch) is ordered before this one when a barrier
  // separates them, it is this thread's own, or a collective of their common warp separates them.
  const auto ordered = [&](int other, std::uint32_t epoch, std::uint32_t warp_epoch) {
    return epoch != now.epoch || other == thread ||
           (warp_of(other) == warp_of(thread) && warp_epoch != now.warp_epoch);
  };
  std::optional<Race> race;
  const auto report = [&](int other, SharedOp other_op) {
    if (!race) {
      race = Race{false, 0, other, other_op, thread, op};
    }
  };

  if (shadow.writer >= 0 && !ordered(shadow.writer, shadow.write_epoch, shadow.write_warp_epoch)) {
    report(shadow.writer, shadow.write_op);
  }

  if (is_write(op)) {
    if (shadow.read_epoch == now.epoch && shadow.reader >= 0) {
      if (shadow.other_warp_reader >= 0) {
        // Readers from two warps: at least one is in another warp than this writer.
        if (warp_of(shadow.reader) == warp_of(thread)) {
          report(shadow.other_warp_reader, shadow.other_warp_reader_op);
        } else {
          report(shadow.reader, shadow.reader_op);
        }
      } else if (warp_of(shadow.reader) != warp_of(thread)) {
        report(shadow.reader, shadow.reader_op);
      } else if (shadow.lanes_warp_epoch == now.warp_epoch) {
        const std::uint32_t others = shadow.lanes & ~lane_bit(thread);
        if (others != 0) {
          const int other = warp_of(thread) * kWarpSize + lowest_lane(others);
          report(other, other == shadow.reader ? shadow.reader_op : shadow.lanes_op);
        }
      }
    }
    shadow.writer = thread;
    shadow.write_epoch = now.epoch;
    shadow.write_warp_epoch = now.warp_epoch;
    shadow.write_op = op;
    return race;
  }

  if (shadow.read_epoch != now.epoch || shadow.reader < 0) {
    shadow.read_epoch = now.epoch;
    shadow.reader = thread;
    shadow.reader_op = op;
    shadow.other_warp_reader = -1;
    shadow.lanes_warp_epoch = now.warp_epoch;
    shadow.lanes = lane_bit(thread);
    shadow.lanes_op = op;
  } else if (warp_of(thread) != warp_of(shadow.reader)) {
    if (shadow.other_warp_reader < 0) {
      shadow.other_warp_reader = thread;
      shadow.other_warp_reader_op = op;
    }
  } else {
    if (shadow.lanes_warp_epoch != now.warp_epoch) {
      shadow.lanes = 0;
      shadow.lanes_warp_epoch = now.warp_epoch;
    }
    shadow.lanes |= lane_bit(thread);
    shadow.lanes_op = op;
  }
  return race;
}

}  // namespace duet::kernels::host
