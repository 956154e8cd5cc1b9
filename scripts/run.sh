#!/usr/bin/env bash
# Installs what is missing, builds the release apps, and starts the server on
# 127.0.0.1:12000 with the demo accounts. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

./scripts/bootstrap.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target tessenger-server tessenger-client

data="$root/data"
mkdir -p "$data"
[ -f "$data/credentials.txt" ] || cp "$root/apps/tessenger-server/credentials.txt" "$data/credentials.txt"

bin="$root/build/release/apps"
cat <<MSG

Demo accounts are in $data/credentials.txt (for example: Hans / falcon*solo, Yoda / wise@!man).
Logs go to $data. In another terminal, connect a client with:

    $bin/tessenger-client/tessenger-client 127.0.0.1 12000 0 --download-dir $data

MSG
exec "$bin/tessenger-server/tessenger-server" 127.0.0.1 12000 3 \
  --credentials "$data/credentials.txt" --data-dir "$data"
