-- POST /v1/customers/identify with an email nobody has: every request creates a customer.
-- Emails are <BENCH_RUN_PREFIX>-t<thread>-<counter>@bench.example; the prefix is new for
-- every measurement, so rounds never collide.
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local prefix
local counter = 0

function setup(thread)
  common.setup(thread)
end

function init(args)
  common.init()
  prefix = common.env("BENCH_RUN_PREFIX")
end

function request()
  counter = counter + 1
  local email = string.format("%s-t%d-%d@bench.example", prefix, tid, counter)
  local body = '{"identifiers": {"email": "' .. email .. '"}, '
    .. '"profile": {"first_name": "Bench"}}'
  return wrk.format("POST", "/v1/customers/identify", common.headers, body)
end
