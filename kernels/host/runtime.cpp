// The host execution layer's scheduler: blocks, fibers, barriers, warp collectives, cp.async
// groups and the checks around them (see runtime.h for the model and its invariants).
//
// One Runtime per OS thread. Within a block, the scheduler keeps a FIFO of ready threads and
// resumes them one at a time; a thread runs until it blocks at block_sync or a warp collective, or
// exits. The last thread to arrive at a barrier or collective releases the others and carries on
// without a switch. An empty ready queue with live threads left is a deadlock.
#include "kernels/host/runtime.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <memory>
#include <new>
#include <vector>

#include "kernels/host/fiber.h"

namespace duet::kernels::host {
namespace {

constexpr int kWarpSize = 32;
constexpr unsigned kMaxBlockThreads = 1024;
constexpr unsigned kMaxBlockDimXY = 1024;
constexpr unsigned kMaxBlockDimZ = 64;
constexpr unsigned kMaxGridDimX = 2147483647u;
constexpr unsigned kMaxGridDimYZ = 65535;
constexpr unsigned char kPoisonByte = 0xFF;  // 0xFFFF.. is a NaN in float, bf16 and f16

enum class Status : std::uint8_t { kReady, kRunning, kAtBarrier, kAtCollective, kExited };

// Thrown into a suspended fiber to unwind it when its launch is aborted. Deliberately not a
// std::exception, so no kernel-side handler mistakes it for an error.
struct Cancelled {};

// One cp_async_16, captured at issue time.
struct PendingCopy {
  unsigned char* dst;
  std::uint32_t group;  // the commit group it belongs to (the count of commits before it)
  unsigned char bytes[16];
};

class Runtime;

struct KernelThread {
  Runtime* runtime = nullptr;
  int rank = 0;
  uint3 index{0, 0, 0};
  Fiber fiber;
  Status status = Status::kReady;
  bool cancel = false;
  bool stack_dirty = false;  // ended by an exception: ASan poison may remain on its stack
  std::exception_ptr error;
  const char* op = nullptr;  // the collective it waits at
  void* operand = nullptr;
  std::vector<PendingCopy> copies;  // issue order; [copies_done, size) still pending
  std::size_t copies_done = 0;
  std::uint32_t groups_committed = 0;
};

std::string format_dim(unsigned x, unsigned y, unsigned z) {
  return "(" + std::to_string(x) + "," + std::to_string(y) + "," + std::to_string(z) + ")";
}

// "0-15, 17, 20-31" for sorted values.
std::string format_ranges(const std::vector<int>& values) {
  std::string out;
  for (std::size_t i = 0; i < values.size();) {
    std::size_t j = i;
    while (j + 1 < values.size() && values[j + 1] == values[j] + 1) {
      ++j;
    }
    if (!out.empty()) {
      out += ", ";
    }
    out += std::to_string(values[i]);
    if (j > i) {
      out += "-" + std::to_string(values[j]);
    }
    i = j + 1;
  }
  return out;
}

std::string format_address(std::uintptr_t address) {
  char text[2 + 2 * sizeof(address) + 1];
  std::snprintf(text, sizeof(text), "0x%llx", static_cast<unsigned long long>(address));
  return text;
}

struct AlignedDelete {
  void operator()(unsigned char* p) const { ::operator delete (p, std::align_val_t{16}); }
};

class Runtime {
 public:
  void launch(const char* kernel_name, dim3 grid, dim3 block, std::size_t dynamic_smem_bytes,
              const std::function<void()>& body);

  KernelThread& current() {
    if (current_ < 0) {
      throw HostKernelError(
          "duet host kernels: a device intrinsic was called outside a kernel launched through "
          "DUET_LAUNCH / duet::kernels::host::launch");
    }
    return threads_[static_cast<std::size_t>(current_)];
  }

  [[noreturn]] void fail_thread(const KernelThread& thread, const std::string& what) const {
    throw HostKernelError(block_prefix() + describe_thread(thread.rank) + ": " + what);
  }

  int lane_id();
  int warp_id();
  void block_sync();
  void warp_collective(const char* op, void* operand, WarpCollectiveFn complete);
  void note_shared_access(int rank, const void* p, std::size_t bytes, std::size_t alignment,
                          SharedOp op);
  void cp_async_16(void* smem_dst, const void* gmem_src, int src_bytes);
  void cp_async_commit();
  void cp_async_wait(int pending_groups);
  void* dynamic_shared_memory() {
    current();
    return dynamic_.get();
  }
  Counters& counters() { return counters_; }

 private:
  static void thread_main(void* arg);

  void validate(dim3 grid, dim3 block, std::size_t dynamic_smem_bytes) const;
  void prepare_stacks(std::size_t count, std::size_t bytes);
  void run_block(uint3 block_idx);
  void switch_to(KernelThread& thread);
  void suspend(KernelThread& thread);
  void thread_exited(KernelThread& thread);
  void release_barrier();
  void next_epoch();
  [[noreturn]] void abort_block(std::exception_ptr error);
  std::string describe_deadlock() const;
  std::string block_prefix() const;
  std::string describe_thread(int rank) const;
  bool warp_has(int warp, Status status) const;
  std::vector<int> warp_lanes_with(int warp, Status status) const;
  int warp_threads(int warp) const {
    return std::min(kWarpSize, static_cast<int>(threads_.size()) - warp * kWarpSize);
  }

  Fibers fibers_;
  std::vector<std::unique_ptr<FiberStack>> stacks_;
  std::size_t stack_bytes_ = 0;
  std::vector<KernelThread> threads_;
  std::deque<int> ready_;
  int current_ = -1;
  int live_ = 0;
  int at_barrier_ = 0;
  bool in_launch_ = false;
  bool cancelling_ = false;

  std::vector<int> warp_arrived_;
  std::vector<const char*> warp_op_;
  std::vector<std::uint32_t> warp_epoch_;
  std::uint32_t epoch_ = 0;

  Counters counters_;
  const char* kernel_name_ = "kernel";
  const std::function<void()>* body_ = nullptr;
  Options options_;
  std::unique_ptr<unsigned char, AlignedDelete> dynamic_;
  std::size_t dynamic_bytes_ = 0;
  RaceDetector races_;
};

Runtime& runtime() {
  static thread_local Runtime instance;
  return instance;
}

// ---- launch and blocks ---------------------------------------------------------------------

void Runtime::validate(dim3 grid, dim3 block, std::size_t dynamic_smem_bytes) const {
  const std::string where = "duet host kernel '" + std::string(kernel_name_) + "': ";
  const unsigned long long threads = static_cast<unsigned long long>(block.x) * block.y * block.z;
  if (block.x == 0 || block.y == 0 || block.z == 0 || block.x > kMaxBlockDimXY ||
      block.y > kMaxBlockDimXY || block.z > kMaxBlockDimZ || threads > kMaxBlockThreads) {
    throw HostKernelError(where + "invalid block dimensions " +
                          format_dim(block.x, block.y, block.z) +
                          " (each at least 1, x and y at most 1024, z at most 64, at most 1024 "
                          "threads in all)");
  }
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > kMaxGridDimX ||
      grid.y > kMaxGridDimYZ || grid.z > kMaxGridDimYZ) {
    throw HostKernelError(where + "invalid grid dimensions " + format_dim(grid.x, grid.y, grid.z) +
                          " (each at least 1, y and z at most 65535)");
  }
  if (dynamic_smem_bytes > options_.max_dynamic_smem_bytes) {
    throw HostKernelError(where + "requests " + std::to_string(dynamic_smem_bytes) +
                          " bytes of dynamic shared memory, above the limit of " +
                          std::to_string(options_.max_dynamic_smem_bytes) +
                          " bytes (H100's opt-in maximum by default; "
                          "duet::kernels::host::Options::max_dynamic_smem_bytes)");
  }
}

void Runtime::prepare_stacks(std::size_t count, std::size_t bytes) {
  if (bytes != stack_bytes_) {
    stacks_.clear();
    stack_bytes_ = bytes;
  }
  while (stacks_.size() < count) {
    stacks_.push_back(std::make_unique<FiberStack>(bytes));
  }
}

void Runtime::launch(const char* kernel_name, dim3 grid, dim3 block, std::size_t dynamic_smem_bytes,
                     const std::function<void()>& body) {
  if (in_launch_) {
    throw HostKernelError("duet host kernel '" + std::string(kernel_name) +
                          "': launched from inside a running kernel (dynamic parallelism is not "
                          "supported by the host execution layer)");
  }
  kernel_name_ = kernel_name;
  options_ = options();
  validate(grid, block, dynamic_smem_bytes);

  const std::size_t thread_count = std::size_t{block.x} * block.y * block.z;
  prepare_stacks(thread_count, options_.fiber_stack_bytes);
  threads_.resize(thread_count);
  const std::size_t warps = (thread_count + kWarpSize - 1) / kWarpSize;
  warp_arrived_.assign(warps, 0);
  warp_op_.assign(warps, nullptr);
  warp_epoch_.assign(warps, 0);

  // Exactly the requested size, so ASan flags an overrun of dynamic shared memory.
  dynamic_.reset(
      static_cast<unsigned char*>(::operator new (dynamic_smem_bytes, std::align_val_t{16})));
  dynamic_bytes_ = dynamic_smem_bytes;
  body_ = &body;

  struct LaunchScope {
    Runtime& runtime;
    explicit LaunchScope(Runtime& r) : runtime(r) { runtime.in_launch_ = true; }
    ~LaunchScope() {
      runtime.in_launch_ = false;
      runtime.body_ = nullptr;
      runtime.dynamic_.reset();
      runtime.dynamic_bytes_ = 0;
    }
  } scope(*this);

  builtins::grid_dim = grid;
  builtins::block_dim = block;
  ++counters_.launches;
  for (unsigned z = 0; z < grid.z; ++z) {
    for (unsigned y = 0; y < grid.y; ++y) {
      for (unsigned x = 0; x < grid.x; ++x) {
        run_block(uint3{x, y, z});
      }
    }
  }
}

void Runtime::next_epoch() {
  if (++epoch_ == 0) {  // wrapped: stamps from before could look current again
    races_.reset();
    epoch_ = 1;
  }
}

void Runtime::run_block(uint3 block_idx) {
  builtins::block_idx = block_idx;
  next_epoch();
  if (dynamic_bytes_ > 0) {
    std::memset(dynamic_.get(), kPoisonByte, dynamic_bytes_);
  }
  races_.begin_block(dynamic_.get(), dynamic_bytes_);

  const dim3 dim = builtins::block_dim;
  ready_.clear();
  for (std::size_t r = 0; r < threads_.size(); ++r) {
    KernelThread& thread = threads_[r];
    const auto rank = static_cast<unsigned>(r);
    thread.runtime = this;
    thread.rank = static_cast<int>(r);
    thread.index = uint3{rank % dim.x, rank / dim.x % dim.y, rank / (dim.x * dim.y)};
    thread.status = Status::kReady;
    thread.cancel = false;
    thread.error = nullptr;
    thread.op = nullptr;
    thread.operand = nullptr;
    thread.copies.clear();
    thread.copies_done = 0;
    thread.groups_committed = 0;
    if (thread.stack_dirty) {
      stacks_[r]->unpoison();
      thread.stack_dirty = false;
    }
    Fibers::prepare(thread.fiber, *stacks_[r], &Runtime::thread_main, &thread);
    ready_.push_back(thread.rank);
  }
  live_ = static_cast<int>(threads_.size());
  at_barrier_ = 0;
  std::fill(warp_arrived_.begin(), warp_arrived_.end(), 0);
  std::fill(warp_op_.begin(), warp_op_.end(), nullptr);
  std::fill(warp_epoch_.begin(), warp_epoch_.end(), 0u);

  while (!ready_.empty()) {
    KernelThread& thread = threads_[static_cast<std::size_t>(ready_.front())];
    ready_.pop_front();
    switch_to(thread);
    if (thread.error) {
      abort_block(thread.error);
    }
  }
  if (live_ > 0) {
    abort_block(std::make_exception_ptr(HostKernelError(describe_deadlock())));
  }
  ++counters_.blocks;
}

void Runtime::switch_to(KernelThread& thread) {
  current_ = thread.rank;
  builtins::thread_idx = thread.index;
  thread.status = Status::kRunning;
  counters_.fiber_switches += 2;  // in, and back out when it blocks or exits
  fibers_.resume(thread.fiber);
  current_ = -1;
}

void Runtime::suspend(KernelThread& thread) {
  fibers_.yield(thread.fiber);
  if (thread.cancel) {
    throw Cancelled{};
  }
}

void Runtime::thread_main(void* arg) {
  auto& thread = *static_cast<KernelThread*>(arg);
  Runtime& self = *thread.runtime;
  try {
    (*self.body_)();
  } catch (const Cancelled&) {
    thread.stack_dirty = true;
  } catch (...) {
    thread.error = std::current_exception();
    thread.stack_dirty = true;
  }
  self.thread_exited(thread);
  self.fibers_.exit(thread.fiber);
}

void Runtime::thread_exited(KernelThread& thread) {
  thread.status = Status::kExited;
  --live_;
  if (cancelling_ || thread.error) {
    return;
  }
  const int warp = thread.rank / kWarpSize;
  if (warp_arrived_[static_cast<std::size_t>(warp)] > 0) {
    try {
      fail_thread(thread, "exited while lanes " +
                              format_ranges(warp_lanes_with(warp, Status::kAtCollective)) +
                              " of warp " + std::to_string(warp) + " wait at warp collective '" +
                              warp_op_[static_cast<std::size_t>(warp)] +
                              "', which needs every lane of the warp");
    } catch (...) {
      thread.error = std::current_exception();
    }
    return;
  }
  if (at_barrier_ > 0 && at_barrier_ == live_) {
    release_barrier();  // exited threads no longer hold a barrier back
  }
}

// ---- barriers and collectives ----------------------------------------------------------------

bool Runtime::warp_has(int warp, Status status) const {
  const KernelThread* lanes = &threads_[static_cast<std::size_t>(warp * kWarpSize)];
  for (int lane = 0; lane < warp_threads(warp); ++lane) {
    if (lanes[lane].status == status) {
      return true;
    }
  }
  return false;
}

std::vector<int> Runtime::warp_lanes_with(int warp, Status status) const {
  std::vector<int> lanes;
  for (int lane = 0; lane < warp_threads(warp); ++lane) {
    if (threads_[static_cast<std::size_t>(warp * kWarpSize + lane)].status == status) {
      lanes.push_back(lane);
    }
  }
  return lanes;
}

void Runtime::release_barrier() {
  for (KernelThread& other : threads_) {
    if (other.status == Status::kAtBarrier) {
      other.status = Status::kReady;
      ready_.push_back(other.rank);
    }
  }
  at_barrier_ = 0;
  next_epoch();
  ++counters_.block_barriers;
}

int Runtime::lane_id() {
  const KernelThread& thread = current();
  const dim3 dim = builtins::block_dim;
  if ((dim.y != 1 || dim.z != 1) && dim.x % kWarpSize != 0) {
    fail_thread(thread,
                "lane_id() reads threadIdx.x, which is the lane only in 1-D blocks or "
                "when blockDim.x is a multiple of 32; this block is " +
                    format_dim(dim.x, dim.y, dim.z));
  }
  return static_cast<int>(thread.index.x % kWarpSize);
}

int Runtime::warp_id() {
  const KernelThread& thread = current();
  const dim3 dim = builtins::block_dim;
  if (dim.y != 1 || dim.z != 1) {
    fail_thread(thread,
                "warp_id() reads threadIdx.x, which gives the warp only in 1-D blocks; "
                "this block is " +
                    format_dim(dim.x, dim.y, dim.z));
  }
  return static_cast<int>(thread.index.x / kWarpSize);
}

void Runtime::block_sync() {
  KernelThread& thread = current();
  const int warp = thread.rank / kWarpSize;
  if (warp_arrived_[static_cast<std::size_t>(warp)] > 0) {
    // The collective needs this lane and the barrier needs those lanes: a certain deadlock.
    fail_thread(thread, "reached block_sync while lanes " +
                            format_ranges(warp_lanes_with(warp, Status::kAtCollective)) +
                            " of its warp " + std::to_string(warp) + " wait at warp collective '" +
                            warp_op_[static_cast<std::size_t>(warp)] +
                            "' (divergent control flow around a barrier or collective)");
  }
  thread.status = Status::kAtBarrier;
  if (++at_barrier_ == live_) {
    thread.status = Status::kRunning;  // the last to arrive carries on; release wakes the rest
    release_barrier();
    return;
  }
  suspend(thread);
}

void Runtime::warp_collective(const char* op, void* operand, WarpCollectiveFn complete) {
  KernelThread& thread = current();
  const int warp = thread.rank / kWarpSize;
  const auto w = static_cast<std::size_t>(warp);
  const int count = warp_threads(warp);
  const int first = warp * kWarpSize;
  if (warp_has(warp, Status::kExited)) {
    fail_thread(thread, "reached warp collective '" + std::string(op) + "' but lanes " +
                            format_ranges(warp_lanes_with(warp, Status::kExited)) +
                            " of its warp " + std::to_string(warp) +
                            " have exited; every lane of the warp must take part");
  }
  if (warp_has(warp, Status::kAtBarrier)) {
    fail_thread(thread, "reached warp collective '" + std::string(op) + "' while lanes " +
                            format_ranges(warp_lanes_with(warp, Status::kAtBarrier)) +
                            " of its warp " + std::to_string(warp) +
                            " wait at block_sync (divergent control flow around a barrier or "
                            "collective)");
  }
  if (warp_arrived_[w] > 0 && std::strcmp(warp_op_[w], op) != 0) {
    fail_thread(thread, "reached warp collective '" + std::string(op) + "' while lanes " +
                            format_ranges(warp_lanes_with(warp, Status::kAtCollective)) +
                            " of its warp " + std::to_string(warp) + " wait at '" + warp_op_[w] +
                            "' (divergent warp collectives)");
  }
  thread.status = Status::kAtCollective;
  thread.op = op;
  thread.operand = operand;
  warp_op_[w] = op;
  if (++warp_arrived_[w] < count) {
    suspend(thread);
    return;
  }
  void* operands[kWarpSize] = {};
  for (int lane = 0; lane < count; ++lane) {
    operands[lane] = threads_[static_cast<std::size_t>(first + lane)].operand;
  }
  complete(operands, count);  // may throw: then this thread carries the error out
  warp_arrived_[w] = 0;
  warp_op_[w] = nullptr;
  ++warp_epoch_[w];
  ++counters_.warp_collectives;
  for (int lane = 0; lane < count; ++lane) {
    KernelThread& other = threads_[static_cast<std::size_t>(first + lane)];
    other.op = nullptr;
    other.operand = nullptr;
    if (&other != &thread) {
      other.status = Status::kReady;
      ready_.push_back(other.rank);
    }
  }
  thread.status = Status::kRunning;
}

// ---- shared memory -----------------------------------------------------------------------------

void Runtime::note_shared_access(int rank, const void* p, std::size_t bytes, std::size_t alignment,
                                 SharedOp op) {
  if (!options_.race_check) {
    return;
  }
  const KernelThread& thread = threads_[static_cast<std::size_t>(rank)];
  const auto address = reinterpret_cast<std::uintptr_t>(p);
  if (alignment > 1 && address % alignment != 0) {
    fail_thread(thread, std::string(shared_op_name(op)) + " of " + std::to_string(bytes) +
                            " bytes at an address not aligned to " + std::to_string(alignment) +
                            " bytes (a misaligned-address fault on the GPU)");
  }
  const auto begin = reinterpret_cast<std::uintptr_t>(dynamic_.get());
  const std::uintptr_t end = begin + dynamic_bytes_;
  const bool overlaps = address < end && address + bytes > begin;
  if (overlaps && (address < begin || address + bytes > end)) {
    fail_thread(thread, std::string(shared_op_name(op)) + " of bytes [" +
                            std::to_string(static_cast<long long>(address - begin)) + ", " +
                            std::to_string(static_cast<long long>(address + bytes - begin)) +
                            ") is outside the block's " + std::to_string(dynamic_bytes_) +
                            " bytes of dynamic shared memory");
  }
  const std::uint32_t warp_epoch = warp_epoch_[static_cast<std::size_t>(rank / kWarpSize)];
  const std::optional<Race> race = races_.access(rank, p, bytes, op, {epoch_, warp_epoch});
  if (!race) {
    return;
  }
  const std::string where =
      race->dynamic ? "byte " + std::to_string(race->where) + " of dynamic shared memory"
                    : "static __shared__ memory at address " + format_address(race->where);
  const bool same_warp = race->earlier_thread / kWarpSize == race->later_thread / kWarpSize;
  throw HostKernelError(
      block_prefix() + "shared-memory race on " + where + ": " +
      describe_thread(race->earlier_thread) + " did " + shared_op_name(race->earlier_op) +
      (is_write(race->earlier_op) ? " (write)" : " (read)") + ", then " +
      describe_thread(race->later_thread) + " did " + shared_op_name(race->later_op) +
      (is_write(race->later_op) ? " (write)" : " (read)") + " with no block_sync between them" +
      (same_warp ? " and no warp_sync or other collective of their warp" : ""));
}

void Runtime::cp_async_16(void* smem_dst, const void* gmem_src, int src_bytes) {
  KernelThread& thread = current();
  if (src_bytes < 0 || src_bytes > 16) {
    fail_thread(thread,
                "cp_async_16 with src_bytes = " + std::to_string(src_bytes) + " (must be 0..16)");
  }
  if (reinterpret_cast<std::uintptr_t>(smem_dst) % 16 != 0 ||
      reinterpret_cast<std::uintptr_t>(gmem_src) % 16 != 0) {
    fail_thread(thread, "cp_async_16 needs 16-byte aligned source and destination addresses");
  }
  note_shared_access(thread.rank, smem_dst, 16, 16, SharedOp::kCpAsync);
  PendingCopy copy{static_cast<unsigned char*>(smem_dst), thread.groups_committed, {}};
  // Read the source now (the GPU may read it any time before the wait), so an out-of-bounds
  // source shows up at the kernel's cp_async_16 line under ASan. Bytes past src_bytes are zeros,
  // and with src_bytes == 0 the source is not read at all, as on the GPU.
  if (src_bytes > 0) {
    std::memcpy(copy.bytes, gmem_src, static_cast<std::size_t>(src_bytes));
  }
  thread.copies.push_back(copy);
}

void Runtime::cp_async_commit() { ++current().groups_committed; }

void Runtime::cp_async_wait(int pending_groups) {
  KernelThread& thread = current();
  if (pending_groups < 0) {
    fail_thread(thread, "cp_async_wait<N> with N < 0");
  }
  const auto pending = static_cast<std::uint32_t>(pending_groups);
  if (thread.groups_committed <= pending) {
    return;
  }
  const std::uint32_t retire_below = thread.groups_committed - pending;
  while (thread.copies_done < thread.copies.size() &&
         thread.copies[thread.copies_done].group < retire_below) {
    const PendingCopy& copy = thread.copies[thread.copies_done++];
    std::memcpy(copy.dst, copy.bytes, sizeof(copy.bytes));
  }
  if (thread.copies_done == thread.copies.size()) {
    thread.copies.clear();
    thread.copies_done = 0;
  }
}

// ---- errors
// --------------------------------------------------------------------------------------

void Runtime::abort_block(std::exception_ptr error) {
  cancelling_ = true;
  for (KernelThread& thread : threads_) {
    if (thread.status != Status::kExited && thread.fiber.started) {
      thread.cancel = true;
      switch_to(thread);  // throws Cancelled at its suspension point and unwinds it
    }
    thread.status = Status::kExited;
  }
  cancelling_ = false;
  ready_.clear();
  live_ = 0;
  at_barrier_ = 0;
  std::rethrow_exception(error);
}

std::string Runtime::block_prefix() const {
  const uint3 b = builtins::block_idx;
  return "duet host kernel '" + std::string(kernel_name_) + "', block " +
         format_dim(b.x, b.y, b.z) + ": ";
}

std::string Runtime::describe_thread(int rank) const {
  const uint3 i = threads_[static_cast<std::size_t>(rank)].index;
  return "thread " + std::to_string(rank) + " (threadIdx " + format_dim(i.x, i.y, i.z) + ", warp " +
         std::to_string(rank / kWarpSize) + " lane " + std::to_string(rank % kWarpSize) + ")";
}

std::string Runtime::describe_deadlock() const {
  std::vector<int> at_barrier;
  std::vector<int> exited;
  std::string collectives;
  for (const KernelThread& thread : threads_) {
    if (thread.status == Status::kAtBarrier) {
      at_barrier.push_back(thread.rank);
    } else if (thread.status == Status::kExited) {
      exited.push_back(thread.rank);
    }
  }
  for (std::size_t w = 0; w < warp_arrived_.size(); ++w) {
    if (warp_arrived_[w] > 0) {
      collectives += "; warp " + std::to_string(w) + " lanes " +
                     format_ranges(warp_lanes_with(static_cast<int>(w), Status::kAtCollective)) +
                     " wait at '" + warp_op_[w] + "'";
    }
  }
  return block_prefix() + "deadlock: no thread can proceed. Threads " +
         (at_barrier.empty() ? std::string("none") : format_ranges(at_barrier)) +
         " wait at block_sync" + collectives + "; threads " +
         (exited.empty() ? std::string("none") : format_ranges(exited)) + " have exited";
}

Options& options_storage() {
  static Options options;
  return options;
}

}  // namespace

Options& options() { return options_storage(); }

Counters counters() { return runtime().counters(); }
void reset_counters() { runtime().counters() = Counters{}; }

void launch(const char* kernel_name, dim3 grid, dim3 block, std::size_t dynamic_smem_bytes,
            const std::function<void()>& body) {
  runtime().launch(kernel_name, grid, block, dynamic_smem_bytes, body);
}

void kernel_error(const std::string& what) {
  Runtime& rt = runtime();
  rt.fail_thread(rt.current(), what);
}

int thread_rank() { return runtime().current().rank; }
int lane_id() { return runtime().lane_id(); }
int warp_id() { return runtime().warp_id(); }
void block_sync() { runtime().block_sync(); }

void warp_collective(const char* op, void* operand, WarpCollectiveFn complete) {
  runtime().warp_collective(op, operand, complete);
}

void note_shared_access(const void* p, std::size_t bytes, std::size_t alignment, SharedOp op) {
  Runtime& rt = runtime();
  rt.note_shared_access(rt.current().rank, p, bytes, alignment, op);
}

void note_shared_access_by_lane(int lane, const void* p, std::size_t bytes, std::size_t alignment,
                                SharedOp op) {
  Runtime& rt = runtime();
  const int warp = rt.current().rank / kWarpSize;
  rt.note_shared_access(warp * kWarpSize + lane, p, bytes, alignment, op);
}

void cp_async_16(void* smem_dst, const void* gmem_src, int src_bytes) {
  runtime().cp_async_16(smem_dst, gmem_src, src_bytes);
}
void cp_async_commit() { runtime().cp_async_commit(); }
void cp_async_wait(int pending_groups) { runtime().cp_async_wait(pending_groups); }
void* dynamic_shared_memory() { return runtime().dynamic_shared_memory(); }

}  // namespace duet::kernels::host
