// Fiber stacks and switches for the host execution layer (see fiber.h).
#include "kernels/host/fiber.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DUET_FIBER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(DUET_FIBER_ASAN)
#define DUET_FIBER_ASAN 1
#endif

#if defined(DUET_FIBER_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

namespace duet::kernels::host {
namespace {

namespace ctx = boost::context::detail;

std::size_t page_size() {
  static const std::size_t size = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return size;
}

// Under ASan, announces a switch to the stack [bottom, bottom + size). `fake_stack_save` receives
// the current fiber's fake stack, or is null when the current fiber is finishing for good.
inline void start_switch([[maybe_unused]] void** fake_stack_save,
                         [[maybe_unused]] const void* bottom, [[maybe_unused]] std::size_t size) {
#if defined(DUET_FIBER_ASAN)
  __sanitizer_start_switch_fiber(fake_stack_save, bottom, size);
#endif
}

// Under ASan, completes a switch; reports the stack we came from when asked.
inline void finish_switch([[maybe_unused]] void* fake_stack_save,
                          [[maybe_unused]] const void** old_bottom,
                          [[maybe_unused]] std::size_t* old_size) {
#if defined(DUET_FIBER_ASAN)
  __sanitizer_finish_switch_fiber(fake_stack_save, old_bottom, old_size);
#endif
}

// The Fibers object a fiber belongs to, handed over on its first switch.
struct StartMessage {
  Fibers* fibers;
  Fiber* fiber;
};

}  // namespace

FiberStack::FiberStack(std::size_t size) {
  const std::size_t page = page_size();
  size_ = (size + page - 1) / page * page;
  mapping_bytes_ = size_ + page;
  mapping_ = mmap(nullptr, mapping_bytes_, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (mapping_ == MAP_FAILED) {
    mapping_ = nullptr;
    throw std::runtime_error("duet host kernels: mmap of a " + std::to_string(mapping_bytes_) +
                             "-byte fiber stack failed: " + std::strerror(errno));
  }
  // Stacks grow down: the guard page sits below the usable range.
  if (mprotect(mapping_, page, PROT_NONE) != 0) {
    const int error = errno;
    munmap(mapping_, mapping_bytes_);
    throw std::runtime_error(
        std::string("duet host kernels: mprotect of a fiber guard page failed: ") +
        std::strerror(error));
  }
  bottom_ = static_cast<char*>(mapping_) + page;
}

FiberStack::~FiberStack() {
  unpoison();  // ASan must not keep stale poison for addresses a later mmap may reuse
  munmap(mapping_, mapping_bytes_);
}

void FiberStack::unpoison() {
#if defined(DUET_FIBER_ASAN)
  __asan_unpoison_memory_region(bottom_, size_);
#endif
}

void Fibers::prepare(Fiber& fiber, FiberStack& stack, Fiber::Entry entry, void* arg) {
  fiber.entry = entry;
  fiber.arg = arg;
  fiber.stack = &stack;
  fiber.context = ctx::make_fcontext(stack.top(), stack.size(), &Fibers::trampoline);
  fiber.asan_fake_stack = nullptr;
  fiber.started = false;
}

void Fibers::resume(Fiber& fiber) {
  StartMessage start{this, &fiber};
  void* message = fiber.started ? nullptr : &start;
  fiber.started = true;
  start_switch(&scheduler_fake_stack_, fiber.stack->bottom(), fiber.stack->size());
  const ctx::transfer_t back = ctx::jump_fcontext(fiber.context, message);
  finish_switch(scheduler_fake_stack_, nullptr, nullptr);
  fiber.context = back.fctx;  // where the fiber continues when resumed again
}

void Fibers::yield(Fiber& fiber) {
  start_switch(&fiber.asan_fake_stack, scheduler_stack_bottom_, scheduler_stack_size_);
  const ctx::transfer_t from = ctx::jump_fcontext(scheduler_, nullptr);
  finish_switch(fiber.asan_fake_stack, &scheduler_stack_bottom_, &scheduler_stack_size_);
  scheduler_ = from.fctx;
}

void Fibers::exit(Fiber&) {
  // A null fake-stack slot tells ASan this fiber is gone, so its fake frames are released.
  start_switch(nullptr, scheduler_stack_bottom_, scheduler_stack_size_);
  ctx::jump_fcontext(scheduler_, nullptr);
  __builtin_unreachable();  // the scheduler never resumes an exited fiber
}

void Fibers::trampoline(ctx::transfer_t from) {
  const auto* start = static_cast<const StartMessage*>(from.data);
  Fibers& fibers = *start->fibers;
  Fiber& fiber = *start->fiber;  // `start` lives on the scheduler's stack: copy before use
  fibers.scheduler_ = from.fctx;
  finish_switch(nullptr, &fibers.scheduler_stack_bottom_, &fibers.scheduler_stack_size_);
  fiber.entry(fiber.arg);
  std::abort();  // entry must end in Fibers::exit: returning here has no stack frame to go to
}

}  // namespace duet::kernels::host
