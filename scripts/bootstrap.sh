#!/usr/bin/env bash
# Installs, with apt-get, exactly the Debian packages the build and tests need
# that are missing. Idempotent; silent when everything is present.
set -euo pipefail

packages=(
  cmake ninja-build g++ pkg-config git
  libasio-dev libfmt-dev libspdlog-dev doctest-dev libcli11-dev
  libssl-dev libsodium-dev libsqlite3-dev libbenchmark-dev
  clang libclang-rt-14-dev clang-format
  libedit-dev tmux
  libhiredis-dev redis-server
  iperf3 nftables iproute2 ethtool procps
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "bootstrap: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "bootstrap: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
