#pragma once

// The Store of a cluster: everything in the Redis the node is connected to,
// sent on its command connection, on its strand.

#include <memory>

#include <tessenger/store.hpp>

#include "cluster/node.hpp"

namespace tessenger::cluster {

std::shared_ptr<Store> make_redis_store(Node& node);

}  // namespace tessenger::cluster
