-- GET /v1/customers/lookup?email=seed<i>@bench.example for a random seeded customer.
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
  local path = string.format("/v1/customers/lookup?email=seed%d%%40bench.example", math.random(seeds))
  return wrk.format("GET", path, common.headers)
end
