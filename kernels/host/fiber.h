#pragma once
// Cooperative fibers for the host execution layer: one per simulated CUDA thread, switched with
// Boost.Context's fcontext (a few register moves, no syscall; swapcontext would make a syscall per
// switch and the kernel tests switch millions of times).
//
// Shape: one scheduler (the OS thread that called launch) resumes fibers; a fiber runs until it
// yields back or exits. Fibers never switch to each other directly, so the scheduler always knows
// who runs. Invariants:
//   - a FiberStack is mmap'd with a PROT_NONE guard page below it, so a stack overflow faults
//     instead of silently writing into a neighbour;
//   - every switch is announced to AddressSanitizer (__sanitizer_start/finish_switch_fiber) when
//     compiled with -fsanitize=address, so ASan knows which stack is live and its fake stacks stay
//     consistent;
//   - a fiber's entry function must end in Fibers::exit, never return.
#include <cstddef>

#include <boost/context/detail/fcontext.hpp>

namespace duet::kernels::host {

// A fiber stack: `size` usable bytes above one guard page.
class FiberStack {
 public:
  explicit FiberStack(std::size_t size);
  ~FiberStack();
  FiberStack(const FiberStack&) = delete;
  FiberStack& operator=(const FiberStack&) = delete;

  void* bottom() const { return bottom_; }  // lowest usable address
  void* top() const { return static_cast<char*>(bottom_) + size_; }
  std::size_t size() const { return size_; }

  // Clears ASan's poisoning of the whole stack (after a fiber on it ended by an exception).
  void unpoison();

 private:
  void* mapping_ = nullptr;  // guard page + stack
  std::size_t mapping_bytes_ = 0;
  void* bottom_ = nullptr;
  std::size_t size_ = 0;
};

// The saved state of one fiber. Owned by the caller; valid while the fiber is suspended.
struct Fiber {
  using Entry = void (*)(void* arg);

  Entry entry = nullptr;
  void* arg = nullptr;
  FiberStack* stack = nullptr;
  boost::context::detail::fcontext_t context = nullptr;  // where it resumes; null before start
  void* asan_fake_stack = nullptr;                       // ASan's per-fiber fake-stack handle
  bool started = false;
};

// Switches between the scheduler (the thread that owns this object) and its fibers.
class Fibers {
 public:
  // Prepares `fiber` to run `entry(arg)` on `stack` when first resumed.
  static void prepare(Fiber& fiber, FiberStack& stack, Fiber::Entry entry, void* arg);

  // Scheduler side: runs `fiber` until it yields or exits.
  void resume(Fiber& fiber);

  // Fiber side: returns control to the scheduler; returns when the scheduler resumes `fiber`.
  void yield(Fiber& fiber);

  // Fiber side: returns to the scheduler for good; the fiber's stack may be reused afterwards.
  [[noreturn]] void exit(Fiber& fiber);

 private:
  static void trampoline(boost::context::detail::transfer_t from);

  boost::context::detail::fcontext_t scheduler_ = nullptr;  // the scheduler, while a fiber runs
  void* scheduler_fake_stack_ = nullptr;
  const void* scheduler_stack_bottom_ = nullptr;  // learnt from ASan on the first switch
  std::size_t scheduler_stack_size_ = 0;
};

}  // namespace duet::kernels::host
