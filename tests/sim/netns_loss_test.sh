#!/usr/bin/env bash
# Real loss: in a network namespace of its own, nftables drops a share of
# UDP datagrams at random on input (an output-hook drop would make sendto
# fail with EPERM, which real loss never does); the file must still arrive
# intact. Exit code 77 means skipped (ctest SKIP_RETURN_CODE), never a pass.
#
#   netns_loss_test.sh TESSENGER_BENCH [SIZE_MB [LOSS_PERCENT [CHUNK [MTU]]]]
#
# With MTU (e.g. 1500 and a CHUNK of 8000) lo gets that MTU, as an Ethernet
# LAN has: GSO sends are refused and the service must fall back to single
# datagrams, which IP fragments.
set -u
bench="$1"
size_mb="${2:-50}"
loss="${3:-5}"
chunk="${4:-1200}"
mtu="${5:-}"

skip() {
  echo "SKIPPED: $*"
  exit 77
}

[ "$(id -u)" = 0 ] || skip "creating a network namespace needs root"
command -v ip >/dev/null || skip "ip (iproute2) is not installed"
command -v nft >/dev/null || skip "nft (nftables) is not installed"
ns="tessenger-loss-$$"
ip netns add "$ns" 2>/dev/null || skip "cannot create a network namespace here"
trap 'ip netns delete "$ns" 2>/dev/null' EXIT
ip -n "$ns" link set lo up || skip "cannot bring up lo in the namespace"
# Loopback would carry a UDP GSO send (up to 64 KiB of datagrams) through the
# input hook as one packet, so one drop would lose a whole run: no real link
# does that. Without the device feature the kernel splits the run into
# datagrams before they are sent, as a NIC does, and each is dropped alone.
command -v ethtool >/dev/null || skip "ethtool is not installed"
ip netns exec "$ns" ethtool -K lo tx-udp-segmentation off >/dev/null ||
  skip "cannot turn off UDP segmentation offload on lo in the namespace"
if [ -n "$mtu" ]; then
  ip -n "$ns" link set lo mtu "$mtu" || skip "cannot set lo's MTU in the namespace"
fi
ip netns exec "$ns" nft -f - <<NFT || skip "cannot load an nftables rule in the namespace"
table inet tessenger_loss {
  chain input {
    type filter hook input priority 0; policy accept;
    meta l4proto udp numgen random mod 100 < $loss counter drop
  }
}
NFT

ip netns exec "$ns" "$bench" transfer --size "$size_mb" --chunk-size "$chunk" --no-iperf3
status=$?
dropped=$(ip netns exec "$ns" nft list chain inet tessenger_loss input |
  sed -n 's/.*counter packets \([0-9]*\).*/\1/p')
echo "nftables dropped ${dropped:-0} UDP datagrams (${loss}% at random)"
if [ "$status" -eq 0 ] && [ "${dropped:-0}" -eq 0 ]; then
  echo "FAILED: nothing was dropped, so this run proved nothing"
  exit 1
fi
exit "$status"
