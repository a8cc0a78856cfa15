// A small fixed thread pool for the CPU backend. parallel_for splits [0, n) into contiguous
// chunks, runs them on the pool plus the calling thread, and rethrows the first exception.
// Both cores of the CPU machines are used this way (limbs, rows or ciphertexts in parallel).
#pragma once
#include <cstddef>
#include <functional>

namespace tensafe {

// Number of worker threads the CPU backend uses (hardware concurrency, or TENSAFE_THREADS).
unsigned cpu_threads();

// Runs body(begin, end) over disjoint chunks of [0, n) in parallel; blocks until all finish.
// min_chunk keeps tiny loops on the calling thread where threading would not pay.
void parallel_for(std::size_t n, const std::function<void(std::size_t, std::size_t)>& body,
                  std::size_t min_chunk = 1);

}  // namespace tensafe
