// Mailbox and Actor: the unit of concurrency in glm's runtime.
//
// An actor owns one thread and one mailbox; other threads talk to it only by
// posting messages. Handle() runs on the actor's thread, one message at a
// time, so an actor's state needs no locks. Bodies that also have their own
// rhythm (a leasing loop) override OnIdle(), called whenever the mailbox
// stays empty for idle_interval_ms.
//
//        Start()            Stop() / Close()
//   [new] ──────► [running] ──────────────► [stopping] ──(drained)──► [joined]
//
// Thread-safety: Mailbox is fully thread-safe. Actor::Post/Stop may be
// called from any thread; Start/Join from the owner.
#ifndef GLM_TRANSPORT_MAILBOX_H_
#define GLM_TRANSPORT_MAILBOX_H_

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

namespace glm::transport {

template <typename T>
class Mailbox {
 public:
  // Returns false if the mailbox is closed (the message is dropped).
  bool Post(T message) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (closed_) return false;
      queue_.push_back(std::move(message));
    }
    cv_.notify_one();
    return true;
  }

  // Waits up to timeout for a message. nullopt on timeout or once closed
  // and empty.
  std::optional<T> Pop(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait_for(lock, timeout, [this] { return closed_ || !queue_.empty(); });
    if (queue_.empty()) return std::nullopt;
    T message = std::move(queue_.front());
    queue_.pop_front();
    return message;
  }

  // Later Posts fail; Pop drains what is queued, then returns nullopt.
  void Close() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      closed_ = true;
    }
    cv_.notify_all();
  }

  bool closed() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return closed_;
  }

  size_t size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return queue_.size();
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<T> queue_;
  bool closed_ = false;
};

template <typename M>
class Actor {
 public:
  explicit Actor(std::string id, std::chrono::milliseconds idle_interval = std::chrono::milliseconds(100))
      : id_(std::move(id)), idle_interval_(idle_interval) {}
  virtual ~Actor() { Join(); }
  Actor(const Actor&) = delete;
  Actor& operator=(const Actor&) = delete;

  const std::string& id() const { return id_; }

  void Start() {
    thread_ = std::thread([this] {
      OnStart();
      while (true) {
        std::optional<M> message = mailbox_.Pop(idle_interval_);
        if (message) {
          Handle(std::move(*message));
        } else if (mailbox_.closed()) {
          break;
        } else {
          OnIdle();
        }
      }
      OnStop();
    });
  }
  bool Post(M message) { return mailbox_.Post(std::move(message)); }
  // Asks the actor to finish: queued messages are still handled.
  void Stop() { mailbox_.Close(); }
  void Join() {
    Stop();
    if (thread_.joinable()) thread_.join();
  }
  bool stopping() const { return mailbox_.closed(); }

 protected:
  virtual void OnStart() {}
  virtual void Handle(M message) = 0;
  virtual void OnIdle() {}
  virtual void OnStop() {}

 private:
  std::string id_;
  std::chrono::milliseconds idle_interval_;
  Mailbox<M> mailbox_;
  std::thread thread_;
};

}  // namespace glm::transport

#endif  // GLM_TRANSPORT_MAILBOX_H_
