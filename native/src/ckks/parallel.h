// parallel_for for the CKKS code: work nested inside a parallel region runs serially on the
// thread that reached it. (The common pool only does this for its worker threads; the calling
// thread's share would otherwise queue nested chunks behind busy workers and wait idle.)
#pragma once
#include <cstddef>
#include <functional>

#include "common/thread_pool.h"

namespace tensafe::ckks {

namespace detail {
inline thread_local int serial_depth = 0;
}

template <typename Body>
void pfor(std::size_t n, const Body& body, std::size_t min_chunk = 1) {
  if (n == 0) return;
  if (detail::serial_depth > 0) {
    body(std::size_t{0}, n);
    return;
  }
  parallel_for(
      n,
      [&](std::size_t b, std::size_t e) {
        ++detail::serial_depth;
        try {
          body(b, e);
        } catch (...) {
          --detail::serial_depth;
          throw;
        }
        --detail::serial_depth;
      },
      min_chunk);
}

}  // namespace tensafe::ckks
