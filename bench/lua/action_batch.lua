-- POST /v1/actions/batch: BENCH_BATCH_SIZE bench.purchase actions, each for a random
-- seeded customer (by customer_id), no external_id. The answer is 200 even when actions
-- are rejected, so every answer is read: all of them must be stored.
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local ids
local size
local stored

function setup(thread)
  common.setup(thread)
end

function init(args)
  common.init()
  ids = common.seeded_ids()
  size = tonumber(common.env("BENCH_BATCH_SIZE"))
  stored = '"stored":' .. size .. ","
end

function request()
  local actions = {}
  for k = 1, size do
    actions[k] = common.action_json(ids[math.random(#ids)], nil)
  end
  local body = '{"actions":[' .. table.concat(actions, ",") .. "]}"
  return wrk.format("POST", "/v1/actions/batch", common.headers, body)
end

function response(status, headers, body)
  common.check(
    status,
    status == 200
      and string.find(body, stored, 1, true) ~= nil
      and string.find(body, '"rejected":0,', 1, true) ~= nil
  )
end

function done(summary, latency, requests)
  common.report()
end
