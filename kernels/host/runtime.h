#pragma once
// The host execution layer: runs duet's CUDA kernel sources on the CPU, the way Triton's
// interpreter runs Triton kernels, so the kernels are tested without a GPU by their own source.
//
// launch() runs every block of the grid, one after another, on the calling OS thread. The threads
// of a block are cooperative fibers (fiber.h); a fiber runs until it reaches a block barrier or a
// warp collective, so barriers, warp collectives, divergent control flow, static and dynamic
// shared memory and threadIdx/blockIdx behave as on a GPU. Invariants:
//   - block_sync releases when every thread of the block that has not exited has arrived; when no
//     thread can proceed (a barrier or collective some threads never reach), launch throws
//     HostKernelError naming the block and what each thread waits for. It never hangs.
//   - a warp collective completes when every thread of the warp has arrived at the same kind of
//     collective; a lane that exits or arrives at a different kind is an error.
//   - an exception thrown on a kernel thread (including HostKernelError from the race detector)
//     aborts the launch, unwinds every fiber, and propagates out of launch; the runtime stays
//     usable for the next launch.
//   - all runtime state is per OS thread (thread_local), so independent OS threads may launch
//     concurrently; Options are process-wide and must be set before launching.
// Kernels reach this file through kernels/device.h and kernels/intrinsics.h; the per-thread
// functions below the launch API are for intrinsics.h, not for kernels.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "kernels/host/race_detector.h"

namespace duet::kernels::host {

// CUDA's built-in vector types, as the host build spells them (device.h makes them global).
struct uint3 {
  unsigned x, y, z;
};

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}  // NOLINT: implicit, as in CUDA
  constexpr operator uint3() const { return uint3{x, y, z}; }
};

// What the running fiber's threadIdx, blockIdx, blockDim and gridDim show; device.h maps the
// CUDA names onto these read-only. Set by the scheduler before every switch into a fiber.
namespace builtins {
inline thread_local uint3 thread_idx{0, 0, 0};
inline thread_local uint3 block_idx{0, 0, 0};
inline thread_local dim3 block_dim{1, 1, 1};
inline thread_local dim3 grid_dim{1, 1, 1};
}  // namespace builtins

// A kernel broke a rule a GPU enforces or leaves undefined: a deadlocked barrier, a divergent
// warp collective, a shared-memory race, a misaligned or out-of-bounds shared access, too much
// shared memory. The message names the kernel, the block and the threads involved.
class HostKernelError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// H100's opt-in limit on dynamic shared memory per block (227 KiB).
inline constexpr std::size_t kH100MaxDynamicSmemBytes = 232448;

struct Options {
  bool race_check = true;  // record shared accesses and report races (also bounds/alignment)
  std::size_t max_dynamic_smem_bytes = kH100MaxDynamicSmemBytes;  // launches above it are refused
  std::size_t fiber_stack_bytes = 256 * 1024;  // per thread; kernels keep ~1-2 KB arrays on it
};

// Process-wide options; change them only while no launch is running.
Options& options();

// Sets options for a scope (tests), restoring the previous ones after.
class ScopedOptions {
 public:
  explicit ScopedOptions(const Options& scoped) : saved_(options()) { options() = scoped; }
  ~ScopedOptions() { options() = saved_; }
  ScopedOptions(const ScopedOptions&) = delete;
  ScopedOptions& operator=(const ScopedOptions&) = delete;

 private:
  Options saved_;
};

// Counters of the calling OS thread, for tests and benchmarks.
struct Counters {
  std::uint64_t launches = 0;
  std::uint64_t blocks = 0;
  std::uint64_t fiber_switches = 0;    // every switch into or out of a fiber
  std::uint64_t block_barriers = 0;    // block_sync releases
  std::uint64_t warp_collectives = 0;  // completed warp collectives (shfl, mma, ldmatrix, sync)
};
Counters counters();
void reset_counters();

// Runs `body` once per thread of every block of the grid. `kernel_name` appears in errors.
void launch(const char* kernel_name, dim3 grid, dim3 block, std::size_t dynamic_smem_bytes,
            const std::function<void()>& body);

// DUET_LAUNCH's host form: converts the arguments to the kernel's parameter types once, as a CUDA
// launch does, and gives every thread its own copies. `stream` is accepted and ignored.
template <class... Params, class... Args>
void launch_kernel(const char* kernel_name, void (*kernel)(Params...), dim3 grid, dim3 block,
                   std::size_t dynamic_smem_bytes, void* /*stream*/, Args&&... args) {
  static_assert(sizeof...(Params) == sizeof...(Args),
                "DUET_LAUNCH: the number of arguments does not match the kernel's parameters");
  const std::tuple<std::decay_t<Params>...> params(std::forward<Args>(args)...);
  launch(kernel_name, grid, block, dynamic_smem_bytes,
         [kernel, &params] { std::apply(kernel, params); });
}

// ---- for intrinsics.h: what the running kernel thread may ask of the runtime -----------------

// Throws HostKernelError whose message names the kernel, block and running thread.
[[noreturn]] void kernel_error(const std::string& what);

int thread_rank();  // linear index of the running thread in its block (x fastest)
int lane_id();      // thread_rank() % 32, checked: 1-D blocks or blockDim.x a multiple of 32
int warp_id();      // thread_rank() / 32, same check

// __syncthreads.
void block_sync();

// A warp collective: the running thread contributes `operand` and waits until every thread of its
// warp has arrived at a collective named `op` (compared by content). The last to arrive calls
// `complete` with the 32 lanes' operands (null for lanes past the end of a partial warp) and the
// number of threads in the warp; then every lane continues.
using WarpCollectiveFn = void (*)(void* const* lane_operands, int warp_threads);
void warp_collective(const char* op, void* operand, WarpCollectiveFn complete);

// Records a shared-memory access of the running thread (race detection, bounds and alignment).
void note_shared_access(const void* p, std::size_t bytes, std::size_t alignment, SharedOp op);
// The same for lane `lane` of the running thread's warp; only inside a WarpCollectiveFn.
void note_shared_access_by_lane(int lane, const void* p, std::size_t bytes, std::size_t alignment,
                                SharedOp op);

// cp.async emulation: the copy is captured at issue and lands in shared memory only when a
// cp_async_wait retires its group.
void cp_async_16(void* smem_dst, const void* gmem_src, int src_bytes);
void cp_async_commit();
void cp_async_wait(int pending_groups);

// The running block's dynamic shared memory (exactly the launch's dynamic_smem_bytes, 16-byte
// aligned, filled with 0xFF bytes at the start of every block).
void* dynamic_shared_memory();

}  // namespace duet::kernels::host
