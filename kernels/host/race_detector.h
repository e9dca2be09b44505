#pragma once
// Shared-memory race detector of the host execution layer.
//
// Every shared-memory access a kernel makes through the intrinsics (smem_load/smem_store,
// ldmatrix rows, cp_async_16 destinations) is recorded per byte. Two accesses to one byte by
// different threads, at least one a write, race unless something orders them:
//   - a block_sync between them (each release starts a new barrier epoch), or
//   - both threads in one warp and a collective of that warp (shfl, mma, ldmatrix, warp_sync)
//     completed between them (each completion bumps that warp's epoch).
// The check is happens-before, not interleaving: it finds a race whatever order the fibers ran in.
// Invariants: epochs only grow, so an entry stamped with an older epoch is ordered before
// everything now, and nothing needs clearing between blocks but the static-memory map.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

namespace duet::kernels::host {

enum class SharedOp : std::uint8_t { kLoad, kStore, kLdmatrix, kCpAsync };

// "smem_load", "smem_store", "ldmatrix", "cp_async_16".
const char* shared_op_name(SharedOp op);
bool is_write(SharedOp op);

// When an access happens, in the terms that order it against others.
struct AccessTime {
  std::uint32_t epoch;       // barrier epoch of the block
  std::uint32_t warp_epoch;  // collectives completed so far by the accessing thread's warp
};

// Two unordered accesses to one byte.
struct Race {
  bool dynamic;          // `where` is a byte offset into dynamic shared memory (else an address)
  std::uintptr_t where;  // byte offset, or the address of a static __shared__ byte
  int earlier_thread;
  SharedOp earlier_op;
  int later_thread;
  SharedOp later_op;
};

class RaceDetector {
 public:
  // Forgets static shared memory and adopts the block's dynamic buffer. Dynamic entries need no
  // clearing: the caller's epoch has moved past all of them.
  void begin_block(const unsigned char* dynamic, std::size_t dynamic_bytes);

  // Forgets everything (the caller's epoch counter wrapped around).
  void reset();

  // Records `bytes` bytes at `p` accessed by block thread `thread`. Returns the race with the
  // lowest byte, if any; the access is recorded either way.
  std::optional<Race> access(int thread, const void* p, std::size_t bytes, SharedOp op,
                             AccessTime now);

 private:
  struct ShadowByte {
    // Last write.
    std::uint32_t write_epoch = 0;
    std::uint32_t write_warp_epoch = 0;
    std::int32_t writer = -1;
    SharedOp write_op = SharedOp::kStore;
    // Reads in epoch `read_epoch`: the first reader, a reader from another warp than the first
    // (which makes any later write a race), and the lanes of the first reader's warp that read
    // since that warp's collective number `lanes_warp_epoch`.
    std::uint32_t read_epoch = 0;
    std::int32_t reader = -1;
    std::int32_t other_warp_reader = -1;
    std::uint32_t lanes_warp_epoch = 0;
    std::uint32_t lanes = 0;
    SharedOp reader_op = SharedOp::kLoad;
    SharedOp other_warp_reader_op = SharedOp::kLoad;
    SharedOp lanes_op = SharedOp::kLoad;
  };

  std::optional<Race> access_byte(ShadowByte& shadow, int thread, SharedOp op, AccessTime now);

  const unsigned char* dynamic_ = nullptr;
  std::size_t dynamic_bytes_ = 0;
  std::vector<ShadowByte> dynamic_shadow_;                        // one per dynamic byte
  std::unordered_map<std::uintptr_t, ShadowByte> static_shadow_;  // static __shared__ bytes
};

}  // namespace duet::kernels::host
