// pfor: the CKKS code's parallel loop, built to degrade gracefully on a shared machine.
//
// [0, n) is cut into chunks that threads CLAIM from an atomic counter: the calling thread
// claims chunks too, and never waits for a chunk that no helper has started, so when the
// other core is busy (or descheduled) the caller simply does all the work itself instead of
// blocking on it. (The common pool hands each worker a fixed chunk; on a loaded 2-core VM the
// caller then often sits idle for milliseconds.) Work nested inside a pfor body runs serially
// on the thread that reached it.
#pragma once
#include <cstddef>
#include <functional>

namespace tensafe::ckks {

namespace detail {
inline thread_local int serial_depth = 0;
void pfor_impl(std::size_t n, std::size_t min_chunk, const std::function<void(std::size_t, std::size_t)>& body);
}  // namespace detail

template <typename Body>
void pfor(std::size_t n, const Body& body, std::size_t min_chunk = 1) {
  if (n == 0) return;
  if (detail::serial_depth > 0) {
    body(std::size_t{0}, n);
    return;
  }
  detail::pfor_impl(n, min_chunk, [&](std::size_t b, std::size_t e) { body(b, e); });
}

// Helper threads of pfor (cpu_threads() - 1).
unsigned pfor_helpers();

}  // namespace tensafe::ckks
