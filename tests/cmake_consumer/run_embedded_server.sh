#!/bin/sh
# Starts the embedded_server example, waits for the line saying it listens,
# stops it with SIGINT and expects its last line and exit status 0.
#   run_embedded_server.sh EXECUTABLE WORK_DIR
set -u
exe=$1
work=$2
mkdir -p "$work"
fifo="$work/embedded_server.out"
rm -f "$fifo"
mkfifo "$fifo"
"$exe" 0 "$work/data" >"$fifo" &
pid=$!
exec 3<"$fifo"
IFS= read -r first <&3 || first=""
case "$first" in
  "embedded_server: listening on 127.0.0.1:"*) ;;
  *) echo "unexpected first line: '$first'" >&2; kill "$pid"; wait "$pid"; exit 1 ;;
esac
kill -INT "$pid"
IFS= read -r last <&3 || last=""
wait "$pid"
status=$?
if [ "$last" != "embedded_server: stopped" ] || [ "$status" -ne 0 ]; then
  echo "embedded_server ended with '$last', status $status" >&2
  exit 1
fi
echo "$first"
echo "$last"
