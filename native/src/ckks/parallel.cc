#include "ckks/parallel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common/thread_pool.h"

namespace tensafe::ckks {
namespace {

struct Job {
  std::size_t n = 0, chunks = 0, step = 0;
  const std::function<void(std::size_t, std::size_t)>* body = nullptr;  // valid while done < chunks
  std::atomic<std::size_t> next{0};
  std::atomic<std::size_t> done{0};
  std::mutex m;
  std::condition_variable cv;
  std::exception_ptr error;

  // Claims and runs chunks until none is left. The body pointer is only used after a
  // successful claim, i.e. while the caller is still waiting, so a helper that starts late
  // never touches a dead caller frame.
  void work() {
    for (;;) {
      const std::size_t c = next.fetch_add(1);
      if (c >= chunks) return;
      const std::size_t b = c * step, e = std::min(n, b + step);
      ++detail::serial_depth;
      try {
        if (b < e) (*body)(b, e);
      } catch (...) {
        std::lock_guard<std::mutex> lock(m);
        if (!error) error = std::current_exception();
      }
      --detail::serial_depth;
      if (done.fetch_add(1) + 1 == chunks) {
        std::lock_guard<std::mutex> lock(m);
        cv.notify_all();
      }
    }
  }
};

class Helpers {
 public:
  explicit Helpers(unsigned count) {
    for (unsigned i = 0; i < count; ++i) threads_.emplace_back([this] { loop(); });
  }
  ~Helpers() {
    {
      std::lock_guard<std::mutex> lock(m_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  unsigned size() const { return static_cast<unsigned>(threads_.size()); }
  void post(const std::shared_ptr<Job>& job, unsigned copies) {
    {
      std::lock_guard<std::mutex> lock(m_);
      for (unsigned i = 0; i < copies; ++i) queue_.push_back(job);
    }
    if (copies == 1) cv_.notify_one();
    else cv_.notify_all();
  }

 private:
  void loop() {
    for (;;) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lock(m_);
        cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
        if (stop_ && queue_.empty()) return;
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      job->work();
    }
  }
  std::vector<std::thread> threads_;
  std::deque<std::shared_ptr<Job>> queue_;
  std::mutex m_;
  std::condition_variable cv_;
  bool stop_ = false;
};

Helpers& helpers() {
  static Helpers* h = new Helpers(cpu_threads() > 1 ? cpu_threads() - 1 : 0);  // never destroyed: lives for the process
  return *h;
}

}  // namespace

unsigned pfor_helpers() { return helpers().size(); }

namespace detail {
void pfor_impl(std::size_t n, std::size_t min_chunk, const std::function<void(std::size_t, std::size_t)>& body) {
  const unsigned threads = helpers().size() + 1;
  min_chunk = std::max<std::size_t>(min_chunk, 1);
  // Up to 4 chunks per thread so a late helper still finds work, but never below min_chunk.
  std::size_t chunks = std::min<std::size_t>(static_cast<std::size_t>(threads) * 4, (n + min_chunk - 1) / min_chunk);
  if (threads == 1 || chunks <= 1) {
    ++serial_depth;
    try {
      body(0, n);
    } catch (...) {
      --serial_depth;
      throw;
    }
    --serial_depth;
    return;
  }
  auto job = std::make_shared<Job>();
  job->n = n;
  job->step = (n + chunks - 1) / chunks;
  job->chunks = (n + job->step - 1) / job->step;
  job->body = &body;
  helpers().post(job, static_cast<unsigned>(std::min<std::size_t>(threads - 1, job->chunks - 1)));
  job->work();
  {
    std::unique_lock<std::mutex> lock(job->m);
    job->cv.wait(lock, [&] { return job->done.load() == job->chunks; });
  }
  if (job->error) std::rethrow_exception(job->error);
}
}  // namespace detail

}  // namespace tensafe::ckks
