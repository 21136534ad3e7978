-- wrk script of scripts/bench-serve.sh: each request asks for one route of
-- `keytrail serve`, chosen by the environment:
--   KT_ROUTE=list      a page of 100 findings after a random id
--   KT_ROUTE=filtered  the same with status=open&min_severity=high
--   KT_ROUTE=page      one finding (KT_FP) with its locations and history
-- KT_MAX_ID is the highest finding id (pages start below it). At the end
-- it prints one line: route, requests, errors, requests/s, p50/p95/p99 ms.

local route = os.getenv("KT_ROUTE") or "list"
local max_id = tonumber(os.getenv("KT_MAX_ID") or "1")
local fp = os.getenv("KT_FP") or ""
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end

function init(args)
  math.randomseed(os.time() * 1000 + (id or 0))
end

function request()
  local path
  if route == "page" then
    path = "/api/v1/findings/" .. fp
  else
    local after = math.random(0, math.max(max_id - 100, 0))
    path = "/api/v1/findings?limit=100&after=" .. after
    if route == "filtered" then
      path = path .. "&status=open&min_severity=high"
    end
  end
  return wrk.format("GET", path)
end

function done(summary, latency, requests)
  local e = summary.errors
  local errors = e.connect + e.read + e.write + e.timeout + e.status
  local secs = summary.duration / 1e6
  io.write(string.format(
    "RESULT route=%s requests=%d errors=%d rps=%.0f p50_ms=%.1f p95_ms=%.1f p99_ms=%.1f max_ms=%.1f\n",
    route, summary.requests, errors, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
