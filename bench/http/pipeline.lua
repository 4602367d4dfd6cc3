-- wrk script for bench/http/run_http.sh: GET / keep-alive, DEPTH requests per write, and a
-- machine-readable summary.
--
-- usage: WRK_CONNECTIONS=C wrk -t1 -c C -d D --latency -s bench/http/pipeline.lua URL -- DEPTH
--
-- DEPTH (default 16) copies of wrk.format(nil, "/") go out in one write, as in wrk's own
-- scripts/pipeline.lua. DEPTH 1 defines no request(), so wrk keeps its static request and the
-- plain case costs the client no Lua call per request.
--
-- done() prints one line after wrk's report: "wrk_json {...}" with requests, duration (us),
-- bytes, wrk's error counters and two sets of latency percentiles (us):
--   wrk_p50_us ...    what `wrk --latency` prints. Before reporting, wrk 4.1 "corrects" its
--                     histogram (stats_correct): every sample of n >= 2e us adds copies at
--                     n-e, n-2e, ... down to e, where e = duration / (requests / connections).
--                     Under pipelining a sample is a whole batch (wrk records one latency per
--                     write, when the last of its DEPTH responses arrives) while e counts single
--                     responses, so e is DEPTH times too small: the copies swamp the histogram,
--                     many land below its minimum where the percentile scan never looks, and
--                     the 99th percentile comes out as 0.
--   p50_us ...        the same histogram with that correction undone (below): the measured
--                     latency of each request (DEPTH 1) or batch (DEPTH > 1). `samples` is
--                     their number; the four are null when the undo did not check out.
-- The undo needs the connection count, which done() cannot see: WRK_CONNECTIONS passes it.

local ffi = require("ffi")

local depth = 16

init = function(args)
  depth = tonumber(args[1]) or 16
  if depth > 1 then
    local r = {}
    for i = 1, depth do
      r[i] = wrk.format(nil, "/")
    end
    local batch = table.concat(r)
    request = function()
      return batch
    end
  end
end

-- wrk's histogram, read in place: LuaJIT's FFI sees the stats struct of wrk 4.x's stats.h
-- behind the userdata (wrk's own accessor rescans the histogram from its minimum for every
-- distinct value: minutes for a wide one). nil unless its fields agree with wrk's accessors.
ffi.cdef([[
  typedef struct { uint64_t count, limit, min, max; uint64_t data[?]; } nbio_wrk_stats;
]])
local function histogram(latency)
  local ok, s = pcall(function()
    return ffi.cast("nbio_wrk_stats **", latency)[0]
  end)
  if not ok or tonumber(s.min) ~= latency.min or tonumber(s.max) ~= latency.max then
    return nil
  end
  return s
end

-- Undoes wrk's stats_correct(e). Walking down from the maximum, the copies that landed on v
-- (only values v > e receive any) are the original samples at v+e, v+2e, ...: the running sum
-- of the originals with v's residue mod e. An empty value had none and received none (a sample
-- above it at a multiple of e would have left a copy). Returns the values (ascending), their
-- original counts and the total, or nil when a count would go negative (the histogram is not
-- what this assumes).
local function uncorrect(s, e)
  local above, down_v, down_c = {}, {}, {}
  local total = 0
  for v = tonumber(s.max), tonumber(s.min), -1 do
    local c = tonumber(s.data[v])
    if c > 0 then
      local r = e > 0 and v % e or 0
      local sum = above[r] or 0
      local o = (e > 0 and v > e) and c - sum or c
      if o < 0 then
        return nil
      end
      above[r] = sum + o
      if o > 0 then
        down_v[#down_v + 1] = v
        down_c[#down_c + 1] = o
        total = total + o
      end
    end
  end
  local values, counts = {}, {}
  for i = #down_v, 1, -1 do
    values[#values + 1] = down_v[i]
    counts[#counts + 1] = down_c[i]
  end
  return values, counts, total
end

-- The percentiles ps (us) of a histogram: values ascending, counts, total samples.
local function percentiles(values, counts, total, ps)
  local out, i, seen = {}, 1, 0
  for k, p in ipairs(ps) do
    local rank = math.max(1, math.ceil(p / 100 * total))
    while i < #values and seen + counts[i] < rank do
      seen = seen + counts[i]
      i = i + 1
    end
    out[k] = values[i]
  end
  return out
end

local function num(x)
  return x and string.format("%d", x) or "null"
end

done = function(summary, latency, requests)
  local ps = { 50, 90, 99, 99.9 }
  local wrk_p = {}
  for k, p in ipairs(ps) do
    wrk_p[k] = latency:percentile(p)
  end
  local raw, samples = {}, nil
  local conns = tonumber(os.getenv("WRK_CONNECTIONS") or "")
  local s = histogram(latency)
  if conns and s then
    -- wrk's interval, in its integer arithmetic; it corrects nothing when fewer requests than
    -- connections completed.
    local per_conn = math.floor(summary.requests / conns)
    local e = per_conn > 0 and math.floor(summary.duration / per_conn) or 0
    local values, counts, total = uncorrect(s, e)
    if values and total > 0 then
      raw = percentiles(values, counts, total, ps)
      samples = total
    end
  end
  local err = summary.errors
  io.write(string.format(
    'wrk_json {"requests": %d, "duration_us": %d, "bytes": %d, "errors_connect": %d, ' ..
    '"errors_read": %d, "errors_write": %d, "errors_status": %d, "errors_timeout": %d, ' ..
    '"samples": %s, "p50_us": %s, "p90_us": %s, "p99_us": %s, "p999_us": %s, ' ..
    '"latency_max_us": %d, "wrk_p50_us": %d, "wrk_p90_us": %d, "wrk_p99_us": %d, ' ..
    '"wrk_p999_us": %d}\n',
    summary.requests, summary.duration, summary.bytes, err.connect, err.read, err.write,
    err.status, err.timeout, num(samples), num(raw[1]), num(raw[2]), num(raw[3]), num(raw[4]),
    latency.max, wrk_p[1], wrk_p[2], wrk_p[3], wrk_p[4]))
end
