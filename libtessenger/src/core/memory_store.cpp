#include <tessenger/store.hpp>

#include "core/store_state.hpp"

namespace tessenger {

Store::~Store() = default;

namespace {

class MemoryStore final : public Store {
 public:
  void configure(const StorePolicy& policy) override { state_.configure(policy); }

  void create_group(std::string group, std::string creator, std::vector<std::string> invited,
                    Done<StoreOutcome> done) override {
    done(state_.create_group(std::move(group), std::move(creator), std::move(invited)));
  }

  void join_group(std::string group, std::string user, Done<StoreOutcome> done) override {
    done(state_.join_group(std::move(group), std::move(user)));
  }

  void leave_group(std::string group, std::string user, Done<GroupDeparture> done) override {
    done(state_.leave_group(std::move(group), user));
  }

  void delete_group(std::string group, std::string user, Done<GroupRemoval> done) override {
    done(state_.delete_group(std::move(group), user));
  }

  void append_group_message(std::string_view group, std::string_view from, std::string_view text,
                            protocol::Timestamp time, Done<StoredGroupMessage> done) override {
    done(state_.append_group_message(group, from, text, time));
  }

  // Nothing is kept, so one counter serves every conversation: its ids are
  // unique and increase within each of them.
  void append_direct_message(std::string_view, std::string_view, std::string_view,
                             protocol::Timestamp, Done<StoredMessage> done) override {
    done({{}, ++last_direct_id_});
  }

  void is_blocked(std::string user, std::string address, protocol::Timestamp now,
                  Done<bool> done) override {
    done(state_.is_blocked(user, address, now));
  }

  void login_failed(std::string user, std::string address, protocol::Timestamp now,
                    Done<FailedLogin> done) override {
    done(state_.login_failed(std::move(user), address, now));
  }

  void login_succeeded(std::string user, std::string address) override {
    state_.login_succeeded(std::move(user), address);
  }

 private:
  core::StoreState state_;
  MessageId last_direct_id_ = 0;
};

}  // namespace

std::shared_ptr<Store> make_memory_store() {
  return std::make_shared<MemoryStore>();
}

}  // namespace tessenger
