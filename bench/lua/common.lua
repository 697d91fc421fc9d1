-- Shared by the scenario scripts (loaded with dofile from BENCH_LUA_DIR).
--
-- wrk runs setup() in its main Lua state once per thread, then init() and request() in
-- each thread's own state, and done() in the main state at the end. The API key comes
-- from the environment (BENCH_API_KEY), so it never shows in `ps`.
local M = {}

local threads = {}

-- Main state: number the threads 1..n (the global `tid` inside each thread).
function M.setup(thread)
  threads[#threads + 1] = thread
  thread:set("tid", #threads)
end

function M.env(name)
  local value = os.getenv(name)
  if value == nil or value == "" then
    error(name .. " is not set (bench/identify_load.py sets it)")
  end
  return value
end

-- Thread state: headers and a random generator seeded differently in every thread.
function M.init()
  M.headers = {
    ["Authorization"] = "Bearer " .. M.env("BENCH_API_KEY"),
    ["Content-Type"] = "application/json",
  }
  math.randomseed(os.time() + (tid or 0) * 7919 + math.floor(os.clock() * 1000000))
  math.random()
  math.random()
end

-- Thread state, from response(): count an answer read, and a 2xx one that is not as the
-- scenario expects (wrk counts the others itself). The globals `checked` and `unexpected`
-- are read by report() at the end.
function M.check(status, ok)
  checked = (checked or 0) + 1
  if status >= 200 and status < 300 and not ok then
    unexpected = (unexpected or 0) + 1
  end
end

-- Main state, from done(): one line bench/measure.py reads; answers that were 2xx but not
-- what the scenario expects count as errors.
function M.report()
  local total_checked, total_unexpected = 0, 0
  for _, thread in ipairs(threads) do
    total_checked = total_checked + (thread:get("checked") or 0)
    total_unexpected = total_unexpected + (thread:get("unexpected") or 0)
  end
  io.write(string.format("bench-check: %d unexpected of %d checked\n", total_unexpected, total_checked))
end

-- Thread state: the customer ids seeded (BENCH_IDS_FILE, one per line).
function M.seeded_ids()
  local ids = {}
  for line in io.lines(M.env("BENCH_IDS_FILE")) do
    if line ~= "" then
      ids[#ids + 1] = line
    end
  end
  if #ids == 0 then
    error("BENCH_IDS_FILE holds no ids")
  end
  return ids
end

-- Thread state: one action of the bench.purchase type for a customer id, ~100-byte payload
-- (bench/scenarios.py: ACTION_PAYLOAD), occurred now. The JSON is written by hand: no
-- JSON library in wrk, and every value here is plain ASCII.
function M.action_json(customer_id, external_id)
  local payload = string.format(
    '{"sku":"SKU-%07d","price":%d.%02d,"currency":"EUR","quantity":%d,'
      .. '"store":"web-eu-1","channel":"app"}',
    math.random(9999999), math.random(0, 99), math.random(0, 99), math.random(1, 9))
  local json = string.format(
    '{"customer":{"customer_id":"%s"},"type":"bench.purchase","occurred_at":"%s","payload":%s',
    customer_id, os.date("!%Y-%m-%dT%H:%M:%SZ"), payload)
  if external_id ~= nil then
    json = json .. ',"external_id":"' .. external_id .. '"'
  end
  return json .. "}"
end

return M
