#!/usr/bin/env bash
# Throughput and latency of `music-crs serve` (release build) under wrk (Debian's `wrk`): the
# config's conversations split (the demo test split: 1,600 turns with their history) replayed
# as POST /v1/recommend by 32 keep-alive connections, after a short warm-up.
#
#   scripts/serve-bench.sh [CONFIG...]
#
# Default configs: config/bm25_template.toml, config/demo_channels_fusion.toml and
# config/demo_ranked.toml (its ranker model is trained first when missing). Environment:
# DURATION (default 20s), CONNECTIONS (32), THREADS (wrk threads, 2), CARGO_TARGET_DIR.
# The server and wrk share the machine: on 2 cores wrk takes part of the CPU the server
# could use, and so does anything else running. Each line also gives the server's own CPU time
# per request (user + system, from /proc) and the load average, so a figure taken on a busy
# machine can be read for what it is.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
target=${CARGO_TARGET_DIR:-target}
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }

configs=("$@")
if [ ${#configs[@]} -eq 0 ]; then
  configs=(config/bm25_template.toml config/demo_channels_fusion.toml config/demo_ranked.toml)
fi

cargo build --release --quiet --features serve --bin music-crs --example serve_requests
bin="$target/release/music-crs"

work=$(mktemp -d)
server=
cleanup() {
  [ -n "$server" ] && kill -TERM "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# utime + stime of a process, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

echo "$(nproc) cores; wrk -t$THREADS -c$CONNECTIONS -d$DURATION; $(uptime | sed 's/.*load/load/')"
for config in "${configs[@]}"; do
  model=$(sed -n 's/^model = "\(.*\)"$/\1/p' "$config")
  if grep -q '^kind = "ranked"' "$config" && [ ! -f "$model" ]; then
    echo "training the ranker of $config ($model)"
    "$bin" --quiet train-ranker --config "$config"
  fi
  "$target/release/examples/serve_requests" "$config" >"$work/requests.jsonl" 2>/dev/null
  "$bin" --quiet serve --config "$config" --addr 127.0.0.1:0 >"$work/server.log" &
  server=$!
  for _ in $(seq 600); do
    grep -q '^serving' "$work/server.log" && break
    kill -0 "$server" 2>/dev/null || { echo "the server of $config exited" >&2; exit 1; }
    sleep 0.2
  done
  addr=$(sed -n 's|^serving .* on http://||p' "$work/server.log")
  [ -n "$addr" ] || { echo "the server of $config did not start" >&2; exit 1; }
  url="http://$addr/v1/recommend"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d3s -s scripts/serve-bench.lua "$url" -- "$work/requests.jsonl" >/dev/null
  cpu_before=$(cpu_ticks "$server")
  result=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s scripts/serve-bench.lua "$url" \
    -- "$work/requests.jsonl" | grep '^RESULT')
  cpu_after=$(cpu_ticks "$server")
  requests=$(sed -n 's/.*requests=\([0-9]*\).*/\1/p' <<<"$result")
  cpu_us=$(( (cpu_after - cpu_before) * 1000000 / $(getconf CLK_TCK) / (requests > 0 ? requests : 1) ))
  echo "$config: ${result#RESULT } server_cpu_us_per_request=$cpu_us load=$(cut -d' ' -f1 /proc/loadavg)"
  kill -TERM "$server"
  wait "$server"
  server=
done
