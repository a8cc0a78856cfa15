// Strand: the queue of one model context. Every operation on a context (its own methods and
// those of the HE-LoRA generators that run on it) goes through its strand, so that
//  * operations on one context run one at a time, in the order they were called (FIFO, not
//    the order in which pool threads happen to take a mutex);
//  * the JS thread never waits for a context: an operation submitted while another runs is
//    queued behind it, and the few synchronous accessors refuse with ERR_TENSAFE_BUSY instead
//    of blocking (the issue-15 freeze: a reset behind a 2000-token prefill);
//  * different contexts run at the same time on different threads.
// Everything here is used on the JS thread only; the work itself runs on pool threads (or, for
// remote projection sites, a thread of its own).
#pragma once
#include <napi.h>

#include <deque>
#include <functional>
#include <memory>
#include <vector>

namespace tensafe::napi {

// Held by shared_ptr (make_shared): a running operation keeps its strand alive until it has
// called `done`, whatever happens to the object that owns the strand meanwhile.
class Strand : public std::enable_shared_from_this<Strand> {
 public:
  // `done` must be called exactly once, on the JS thread, when the operation has finished.
  using Done = std::function<void()>;
  using Op = std::function<void(Done done)>;

  // Starts `op` now when the strand is idle, else queues it behind what was submitted before.
  void submit(Op op);
  // An operation is running or queued.
  bool busy() const { return running_; }
  size_t queued() const { return queue_.size(); }
  // Runs `fn` (on the JS thread) as soon as no operation runs: now when idle, else between
  // the running operation and the next (for cleanups that must not race the work).
  void when_idle(std::function<void()> fn);

 private:
  void finish();
  bool running_ = false;
  std::deque<Op> queue_;
  std::vector<std::function<void()>> idle_;
};

// Queues `execute` on `strand` (it runs on a pool thread when its turn comes) and returns a
// promise settled with complete(env) (or the error of either) on the JS thread. `settled`
// (optional) runs on the JS thread after either outcome, before the next operation starts.
Napi::Promise run_on_strand(Napi::Env env, Strand& strand, const char* name, std::function<void()> execute,
                            std::function<Napi::Value(Napi::Env)> complete, std::function<void()> settled = nullptr);

// A promise already resolved with undefined (operations that ran at once on an idle strand).
Napi::Promise resolved_promise(Napi::Env env);

}  // namespace tensafe::napi
