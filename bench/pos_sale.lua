-- wrk script: POS cash sales, POST /api/v1/orders for channel pos-1.
-- Each request has one or two lines (50/50) chosen at random from BENCH_EANS,
-- a cash payment, and a unique Idempotency-Key, so every request is a new sale.
-- done() writes the counts and latency percentiles as JSON to BENCH_OUT.

local eans = {}
for e in string.gmatch(os.getenv("BENCH_EANS") or "", "[^,]+") do
  eans[#eans + 1] = e
end
local token = os.getenv("BENCH_TOKEN") or ""
local run = os.getenv("BENCH_RUN") or tostring(os.time())
local out = os.getenv("BENCH_OUT")

local threads = {}
tid = 0          -- set per thread by setup()
counter = 0
statuses = {}    -- status code (string) -> count, per thread

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  math.randomseed(os.time() * 1000 + tid * 7919)
  if #eans == 0 then
    error("BENCH_EANS is empty")
  end
end

local function line(ean)
  return '{"ean":"' .. ean .. '","quantity":1}'
end

function request()
  counter = counter + 1
  local a = math.random(#eans)
  local lines = line(eans[a])
  if math.random() < 0.5 then
    local b = math.random(#eans - 1)
    if b >= a then b = b + 1 end
    lines = lines .. "," .. line(eans[b])
  end
  local body = '{"channel":"pos-1","lines":[' .. lines .. '],"payments":[{"method":"cash"}]}'
  return wrk.format("POST", "/api/v1/orders", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
    ["Idempotency-Key"] = string.format("%s-%d-%d", run, tid, counter),
  }, body)
end

function response(status, headers, body)
  local k = tostring(status)
  statuses[k] = (statuses[k] or 0) + 1
end

function done(summary, latency, requests)
  local merged = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for k, v in pairs(s) do
      merged[k] = (merged[k] or 0) + v
    end
  end
  local parts = {}
  for k, v in pairs(merged) do
    parts[#parts + 1] = string.format('"%s":%d', k, v)
  end
  local e = summary.errors
  local json = string.format(
    '{"duration_us":%d,"requests":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"statuses":{%s},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"max":%d,' ..
    '"p50":%d,"p90":%d,"p95":%d,"p99":%d,"p99_9":%d}}',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    table.concat(parts, ","),
    latency.min, latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99), latency:percentile(99.9))
  if out then
    local f = assert(io.open(out, "w"))
    f:write(json, "\n")
    f:close()
  else
    io.write(json, "\n")
  end
end
