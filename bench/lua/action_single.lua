-- POST /v1/actions: one bench.purchase action for a random seeded customer (by
-- customer_id), with an external_id nobody used: <BENCH_RUN_PREFIX>-t<thread>-<counter>
-- (the prefix is new for every measurement). Every answer must be 201 (a 200 would be a
-- replay of a stored external_id).
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local ids
local prefix
local counter = 0

function setup(thread)
  common.setup(thread)
end

function init(args)
  common.init()
  ids = common.seeded_ids()
  prefix = common.env("BENCH_RUN_PREFIX")
end

function request()
  counter = counter + 1
  local external_id = string.format("%s-t%d-%d", prefix, tid, counter)
  local body = common.action_json(ids[math.random(#ids)], external_id)
  return wrk.format("POST", "/v1/actions", common.headers, body)
end

function response(status, headers, body)
  common.check(status, status == 201)
end

function done(summary, latency, requests)
  common.report()
end
