-- GET /v1/customers/{id} for a random seeded customer; the ids come from BENCH_IDS_FILE
-- (one per line, written by bench/identify_load.py after seeding).
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local ids = {}

function setup(thread)
  common.setup(thread)
end

function init(args)
  common.init()
  for line in io.lines(common.env("BENCH_IDS_FILE")) do
    if line ~= "" then
      ids[#ids + 1] = line
    end
  end
  if #ids == 0 then
    error("BENCH_IDS_FILE holds no ids")
  end
end

function request()
  return wrk.format("GET", "/v1/customers/" .. ids[math.random(#ids)], common.headers)
end
