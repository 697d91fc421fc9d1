-- POST /v1/customers/identify with a seeded email and the profile it already has:
-- every request finds one customer, locks it and answers "unchanged".
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local seeds

function setup(thread)
  common.setup(thread)
end

function init(args)
  common.init()
  seeds = tonumber(common.env("BENCH_SEED_COUNT"))
end

function request()
  local email = string.format("seed%d@bench.example", math.random(seeds))
  local body = '{"identifiers": {"email": "' .. email .. '"}, '
    .. '"profile": {"first_name": "Bench"}}'
  return wrk.format("POST", "/v1/customers/identify", common.headers, body)
end
