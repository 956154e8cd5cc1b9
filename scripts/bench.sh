#!/usr/bin/env bash
# Builds the release preset, then runs the whole benchmark table of
# docs/performance.md: every scenario RUNS times (default 3), interleaved so
# that the runs of TESSENGER and of the baseline relay see the same machine,
# and prints the median of each figure against its target.
#
#   scripts/bench.sh            # the full table, about 6 minutes
#   RUNS=1 DURATION=3 scripts/bench.sh   # a quick smoke run
#
# Raw JSON results go to $OUT (default build/release/bench-results.jsonl).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
HOLD=${HOLD:-5}

cmake --preset release >/dev/null
cmake --build --preset release --target tessenger-server tessenger-bench
bench=build/release/apps/tessenger-bench/tessenger-bench
out=${OUT:-build/release/bench-results.jsonl}
: >"$out"

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) CPUs"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

err=$(mktemp)
trap 'rm -f "$err"' EXIT
start=$(date +%s)
# run LABEL ARGS...: one scenario, its JSON tagged with LABEL.
run() {
  local label=$1
  shift
  local json
  if json=$("$bench" --json "$@" 2>"$err"); then
    printf '{"label": "%s", "result": %s}\n' "$label" "$json" >>"$out"
  else
    printf '{"label": "%s", "error": %s}\n' "$label" \
      "$(python3 -c 'import json,sys; print(json.dumps(sys.stdin.read().strip()))' <"$err")" >>"$out"
  fi
  printf '.'
}

pairs=(--duration "$DURATION" --warmup "$WARMUP" --pairs 50)
for round in $(seq "$RUNS"); do
  printf 'round %s ' "$round"
  run pairs-w64 pairs "${pairs[@]}" --window 64
  run relay-w64 baseline-relay "${pairs[@]}" --window 64
  run pairs-w1 pairs "${pairs[@]}" --window 1
  run relay-w1 baseline-relay "${pairs[@]}" --window 1
  run pairs-r500 pairs "${pairs[@]}" --rate 500
  run relay-r500 baseline-relay "${pairs[@]}" --rate 500
  run fanout fanout --duration "$DURATION" --warmup "$WARMUP" --members 50 --window 16
  run login login --users 10000 --concurrency 8 --hold "$HOLD"
  run transfer-1200 transfer --size 512 --chunk-size 1200
  run transfer-8000 transfer --size 512 --chunk-size 8000
  echo
done
echo "measured in $(($(date +%s) - start)) s; raw results in $out"
echo

python3 - "$out" <<'EOF'
import json, statistics, sys

results = {}
errors = {}
for line in open(sys.argv[1]):
    entry = json.loads(line)
    if "result" in entry:
        results.setdefault(entry["label"], []).append(entry["result"])
    else:
        errors.setdefault(entry["label"], entry["error"])

def median(label, *keys):
    values = []
    for r in results.get(label, []):
        v = r
        for k in keys:
            v = v.get(k) if isinstance(v, dict) else None
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            values.append(v)
    return statistics.median(values) if values else None

def fmt(v, digits=0):
    if v is None:
        return "n/a"
    return f"{v:,.{digits}f}"

rows = []
def row(workload, figure, value, target, ok, note=""):
    verdict = "n/a" if ok is None else ("met" if ok else "MISSED")
    rows.append((workload, figure, value, target, verdict, note))

def check(value, op, bound):
    if value is None:
        return None
    return value >= bound if op == ">=" else value <= bound

def ratio(a, b):
    return None if a is None or not b else a / b

def pairs_rows(label, relay, workload, rate_target):
    if label in errors and label not in results:
        row(workload, "error", errors[label], "", False)
        return
    d = median(label, "delivered_per_second")
    r = median(relay, "delivered_per_second")
    cpu = median(label, "server_cpu_us_per_message")
    lost = max((x.get("lost", 0) for x in results.get(label, [])), default=None)
    row(workload, "delivered msgs/s", fmt(d), f">= {rate_target:,}" if rate_target else "",
        check(d, ">=", rate_target) if rate_target else None)
    rel = ratio(d, r)
    row(workload, "vs baseline-relay", "n/a" if rel is None else f"{rel:.0%}", ">= 60%",
        check(rel, ">=", 0.6), f"relay {fmt(r)} msgs/s")
    row(workload, "server CPU/msg", fmt(cpu, 2) + " us", "", None,
        f"bench CPU {fmt(median(label, 'bench_cpu_percent'))}%, "
        f"server CPU {fmt(median(label, 'server_cpu_percent'))}%")
    row(workload, "lost", fmt(lost), "0", check(lost, "<=", 0))
    return cpu

cpu = pairs_rows("pairs-w64", "relay-w64", "pairs --pairs 50 --window 64", 650_000)
row("pairs --pairs 50 --window 64", "server CPU/msg target", fmt(cpu, 2) + " us", "<= 1.2 us",
    check(cpu, "<=", 1.2))
pairs_rows("pairs-w1", "relay-w1", "pairs --pairs 50 --window 1", 100_000)
w = "pairs --pairs 50 --rate 500"
p50 = median("pairs-r500", "latency_us", "p50")
p99 = median("pairs-r500", "latency_us", "p99")
rp50 = median("relay-r500", "latency_us", "p50")
rp99 = median("relay-r500", "latency_us", "p99")
row(w, "latency p50", fmt(p50) + " us", "<= 80 us", check(p50, "<=", 80), f"relay p50 {fmt(rp50)} us")
row(w, "latency p99", fmt(p99) + " us", "<= 150 us", check(p99, "<=", 150), f"relay p99 {fmt(rp99)} us")
lost = max((x.get("lost", 0) for x in results.get("pairs-r500", [])), default=None)
row(w, "lost", fmt(lost), "0", check(lost, "<=", 0))

w = "fanout --members 50 --window 16"
if "fanout" in errors and "fanout" not in results:
    row(w, "error", errors["fanout"], "", False)
d = median("fanout", "deliveries_per_second")
c = median("fanout", "server_cpu_us_per_delivery")
row(w, "deliveries/s", fmt(d), ">= 1,000,000", check(d, ">=", 1_000_000),
    f"{fmt(median('fanout', 'messages_per_second'))} msgs/s")
row(w, "server CPU/delivery", fmt(c, 2) + " us", "<= 0.8 us", check(c, "<=", 0.8))
row(w, "last-member latency p50/p99",
    f"{fmt(median('fanout', 'latency_us', 'p50'))} / {fmt(median('fanout', 'latency_us', 'p99'))} us", "", None)

w = "login --users 10000 --concurrency 8 --hold 5"
if "login" in errors and "login" not in results:
    row(w, "error", errors["login"], "", False)
held = median("login", "sessions_held")
row(w, "sessions held", fmt(held), "10,000", check(held, ">=", 10000))
lps = median("login", "logins_per_second")
row(w, "logins/s", fmt(lps), ">= 10,000", check(lps, ">=", 10000))
rss = median("login", "rss_per_session_bytes")
row(w, "RSS per session", fmt(rss) + " B", "<= 5,120 B", check(rss, "<=", 5120),
    f"server RSS {fmt(median('login', 'server_rss_bytes'))} B, "
    f"{fmt(median('login', 'server_threads'))} thread(s)")

for label, size in (("transfer-1200", 1200), ("transfer-8000", 8000)):
    w = f"transfer --size 512 --chunk-size {size}"
    if label not in results:
        row(w, "goodput", "n/a", ">= 70% of iperf3", None, errors.get(label, ""))
        continue
    g = median(label, "goodput_mb_per_s")
    i = median(label, "iperf3_goodput_mb_per_s")
    rt = median(label, "ratio")
    fg = median(label, "file_goodput_mb_per_s")
    frt = median(label, "file_ratio")
    fw = median(label, "file_write_mb_per_s")
    intact = all(x.get("intact") for x in results[label])
    pct = lambda v: "n/a" if v is None else f"{v:.0%}"
    row(w, "goodput into memory MB/s", fmt(g), "", None,
        f"iperf3 {fmt(i)} MB/s; peers' threads {fmt(median(label, 'sender_cpu_percent'))}% / "
        f"{fmt(median(label, 'receiver_cpu_percent'))}%, process {fmt(median(label, 'bench_cpu_percent'))}%")
    row(w, "ratio to iperf3", pct(rt), ">= 70%", check(rt, ">=", 0.7))
    row(w, "goodput into a file MB/s", fmt(fg), "", None,
        f"{pct(frt)} of iperf3; writing a fresh file alone: {fmt(fw)} MB/s")
    row(w, "intact", "yes" if intact else "NO", "yes", intact)

widths = [max(len(str(r[i])) for r in rows + [("workload", "figure", "median", "target", "verdict", "")])
          for i in range(6)]
header = ("workload", "figure", "median", "target", "verdict", "")
for r in [header] + rows:
    print("  ".join(str(c).ljust(widths[i]) for i, c in enumerate(r)).rstrip())
EOF
