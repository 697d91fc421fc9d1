-- Shared by the scenario scripts (loaded with dofile from BENCH_LUA_DIR).
--
-- wrk runs setup() in its main Lua state once per thread, then init() and request() in
-- each thread's own state. The API key comes from the environment (BENCH_API_KEY), so
-- it never shows in `ps`.
local M = {}

local threads = 0

-- Main state: number the threads 1..n (the global `tid` inside each thread).
function M.setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
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

return M
