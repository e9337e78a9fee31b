-- wrk script for scripts/serve-bench.sh: replays JSON bodies (one per line, written by
-- examples/serve_requests.rs) as POST requests, each thread from its own offset, and prints the
-- latency percentiles, the throughput and the error count on one line.
local requests = {}
local next_index = 1

function init(args)
  local path = args[1]
  if path == nil then
    error("usage: wrk ... -s serve-bench.lua URL -- REQUESTS.jsonl")
  end
  local headers = { ["Content-Type"] = "application/json" }
  for line in io.lines(path) do
    requests[#requests + 1] = wrk.format("POST", nil, headers, line)
  end
  if #requests == 0 then
    error(path .. " holds no request")
  end
  next_index = math.random(#requests)
end

function request()
  next_index = next_index % #requests + 1
  return requests[next_index]
end

function done(summary, latency, _)
  local seconds = summary.duration / 1e6
  local errors = summary.errors
  local failed = errors.connect + errors.read + errors.write + errors.timeout + errors.status
  io.write(string.format(
    "RESULT requests=%d seconds=%.2f rps=%.0f p50_ms=%.2f p95_ms=%.2f p99_ms=%.2f max_ms=%.2f errors=%d\n",
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, failed))
end
