#include "context_strand.h"

#include <utility>

#include "napi_util.h"

namespace tensafe::napi {

void Strand::submit(Op op) {
  if (running_) {
    queue_.push_back(std::move(op));
    return;
  }
  running_ = true;
  op([self = shared_from_this()] { self->finish(); });
}

void Strand::when_idle(std::function<void()> fn) {
  if (!running_) {
    fn();
    return;
  }
  idle_.push_back(std::move(fn));
}

void Strand::finish() {
  // Between two operations nothing runs on the context: run the deferred cleanups here.
  std::vector<std::function<void()>> idle;
  idle.swap(idle_);
  for (auto& fn : idle) {
    try {
      fn();
    } catch (...) {
    }
  }
  if (queue_.empty()) {
    running_ = false;
    return;
  }
  Op next = std::move(queue_.front());
  queue_.pop_front();
  next([self = shared_from_this()] { self->finish(); });
}

namespace {

// A PromiseWorker made when its operation is submitted (so its promise exists at once) and
// queued when the strand starts it; it tells the strand when it has settled.
class StrandWorker : public PromiseWorker {
 public:
  StrandWorker(Napi::Env env, const char* name, ExecuteFn execute, CompleteFn complete, std::function<void()> settled)
      : PromiseWorker(env, name, std::move(execute), std::move(complete)), settled_(std::move(settled)) {}
  void start(Strand::Done done) {
    done_ = std::move(done);
    Queue();
  }
  using PromiseWorker::promise;

 protected:
  void OnOK() override {
    PromiseWorker::OnOK();
    end();
  }
  void OnError(const Napi::Error& e) override {
    PromiseWorker::OnError(e);
    end();
  }

 private:
  void end() {
    if (settled_) {
      try {
        settled_();
      } catch (...) {
      }
    }
    if (done_) done_();
  }
  std::function<void()> settled_;
  Strand::Done done_;
};

}  // namespace

Napi::Promise run_on_strand(Napi::Env env, Strand& strand, const char* name, std::function<void()> execute,
                            std::function<Napi::Value(Napi::Env)> complete, std::function<void()> settled) {
  auto* w = new StrandWorker(env, name, std::move(execute), std::move(complete), std::move(settled));
  Napi::Promise promise = w->promise();
  strand.submit([w](Strand::Done done) { w->start(std::move(done)); });
  return promise;
}

Napi::Promise resolved_promise(Napi::Env env) {
  auto d = Napi::Promise::Deferred::New(env);
  d.Resolve(env.Undefined());
  return d.Promise();
}

}  // namespace tensafe::napi
