#include <tessenger/clock.hpp>

namespace tessenger {

Clock::~Clock() = default;

Clock::Subscription Clock::on_jump(std::function<void()>) {
  return nullptr;
}

namespace {

class SystemClock final : public Clock {
 public:
  Steady steady() const override { return std::chrono::steady_clock::now(); }
  Wall wall() const override { return std::chrono::system_clock::now(); }
};

}  // namespace

std::shared_ptr<Clock> system_clock() {
  static const auto clock = std::make_shared<SystemClock>();
  return clock;
}

ManualClock::ManualClock()
    : steady_(std::chrono::steady_clock::now()), wall_(std::chrono::system_clock::now()) {}

Clock::Steady ManualClock::steady() const {
  std::lock_guard lock(mutex_);
  return steady_;
}

Clock::Wall ManualClock::wall() const {
  std::lock_guard lock(mutex_);
  return wall_;
}

Clock::Subscription ManualClock::on_jump(std::function<void()> jumped) {
  auto listener = std::make_shared<Listener>(Listener{std::move(jumped)});
  std::lock_guard lock(mutex_);
  std::erase_if(listeners_, [](const auto& weak) { return weak.expired(); });
  listeners_.push_back(listener);
  return listener;
}

void ManualClock::advance(std::chrono::nanoseconds by) {
  std::vector<std::shared_ptr<Listener>> notify;
  {
    std::lock_guard lock(mutex_);
    steady_ += std::chrono::duration_cast<Steady::duration>(by);
    wall_ += std::chrono::duration_cast<Wall::duration>(by);
    for (const auto& weak : listeners_) {
      if (auto listener = weak.lock()) notify.push_back(std::move(listener));
    }
  }
  // Outside the lock: a listener may read the clock.
  for (const auto& listener : notify)
    listener->jumped();
}

}  // namespace tessenger
