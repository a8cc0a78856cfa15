#include "common/thread_pool.h"

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace tensafe {
namespace {

// Set inside pool tasks: a nested parallel_for then runs serially instead of waiting on
// workers that are busy running its parent (which would deadlock).
thread_local bool inside_pool_task = false;

class ThreadPool {
 public:
  explicit ThreadPool(unsigned workers) {
    for (unsigned i = 0; i < workers; ++i) threads_.emplace_back([this] { loop(); });
  }
  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
  }
  void submit(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      tasks_.push_back(std::move(task));
    }
    wake_.notify_one();
  }
  unsigned size() const { return static_cast<unsigned>(threads_.size()); }

 private:
  void loop() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
        if (stopping_ && tasks_.empty()) return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      inside_pool_task = true;
      task();
      inside_pool_task = false;
    }
  }
  std::vector<std::thread> threads_;
  std::deque<std::function<void()>> tasks_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
};

ThreadPool& pool() {
  // Workers = threads - 1: the calling thread takes a share of every parallel_for.
  static ThreadPool instance(cpu_threads() > 1 ? cpu_threads() - 1 : 0);
  return instance;
}

}  // namespace

unsigned cpu_threads() {
  static unsigned count = [] {
    if (const char* env = std::getenv("TENSAFE_THREADS")) {
      int v = std::atoi(env);
      if (v >= 1 && v <= 256) return static_cast<unsigned>(v);
    }
    unsigned hw = std::thread::hardware_concurrency();
    return hw == 0 ? 1u : hw;
  }();
  return count;
}

void parallel_for(std::size_t n, const std::function<void(std::size_t, std::size_t)>& body,
                  std::size_t min_chunk) {
  if (n == 0) return;
  unsigned threads = cpu_threads();
  std::size_t chunks = std::min<std::size_t>(threads, (n + min_chunk - 1) / std::max<std::size_t>(min_chunk, 1));
  if (chunks <= 1 || inside_pool_task) {
    body(0, n);
    return;
  }
  std::mutex done_mutex;
  std::condition_variable done_cv;
  std::size_t remaining = chunks - 1;
  std::exception_ptr first_error;
  std::size_t step = (n + chunks - 1) / chunks;
  for (std::size_t c = 1; c < chunks; ++c) {
    std::size_t begin = c * step, end = std::min(n, begin + step);
    pool().submit([&, begin, end] {
      try {
        if (begin < end) body(begin, end);
      } catch (...) {
        std::lock_guard<std::mutex> lock(done_mutex);
        if (!first_error) first_error = std::current_exception();
      }
      std::lock_guard<std::mutex> lock(done_mutex);
      if (--remaining == 0) done_cv.notify_one();
    });
  }
  try {
    body(0, std::min(n, step));
  } catch (...) {
    std::lock_guard<std::mutex> lock(done_mutex);
    if (!first_error) first_error = std::current_exception();
  }
  std::unique_lock<std::mutex> lock(done_mutex);
  done_cv.wait(lock, [&] { return remaining == 0; });
  if (first_error) std::rethrow_exception(first_error);
}

}  // namespace tensafe
