-- The soak's mix (bench/mix.py), closed-loop: each request is one kind drawn at random
-- by weight (BENCH_MIX = "name:weight,..."), built as bench/open_loop.py builds it.
-- Customers: seeds 1..BENCH_RICH for redemptions, the others for accruals; subscription
-- changes in BENCH_SUB_FIRST..BENCH_SUB_LAST, split between the threads (thread t takes
-- every n-th customer), each thread sending the status it did not set last.
-- wrk counts non-2xx answers; which kind an answer belongs to is not known here (wrk
-- does not tell), so the contents are checked by the open-loop soak, not by this run.
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local ids
local seeds
local rich
local prefix
local kinds = {}
local total_weight = 0
local sub_first, sub_last
local sub_status = {}
local counter = 0
local nthreads

function setup(thread)
  common.setup(thread)
end

function init(args)
  common.init()
  ids = common.seeded_ids()
  seeds = tonumber(common.env("BENCH_SEED_COUNT"))
  rich = tonumber(common.env("BENCH_RICH"))
  prefix = common.env("BENCH_RUN_PREFIX")
  sub_first = tonumber(common.env("BENCH_SUB_FIRST"))
  sub_last = tonumber(common.env("BENCH_SUB_LAST"))
  nthreads = tonumber(common.env("BENCH_THREADS"))
  for name, weight in string.gmatch(common.env("BENCH_MIX"), "([%w_]+):(%d+)") do
    total_weight = total_weight + tonumber(weight)
    kinds[#kinds + 1] = { name = name, upto = total_weight }
  end
end

local function unique()
  counter = counter + 1
  return string.format("%s-t%d-%d", prefix, tid, counter)
end

local function with_header(name, value)
  local headers = {}
  for k, v in pairs(common.headers) do
    headers[k] = v
  end
  headers[name] = value
  return headers
end

local function identify(email)
  local body = '{"identifiers":{"email":"' .. email .. '"},"profile":{"first_name":"Bench"}}'
  return wrk.format("POST", "/v1/customers/identify", common.headers, body)
end

local function points(customer, kind, amount)
  local key = unique()
  local body = string.format('{"account":"bench","type":"%s","amount":"%s","reference":"%s"}',
    kind, amount, key)
  return wrk.format("POST", "/v1/customers/" .. ids[customer] .. "/points/transactions",
    with_header("Idempotency-Key", key), body)
end

local function subscription()
  -- This thread's share of the range: customers sub_first + tid - 1 + k * nthreads.
  local slots = math.floor((sub_last - sub_first - tid + 1) / nthreads) + 1
  local customer = sub_first + tid - 1 + (math.random(slots) - 1) * nthreads
  local status = sub_status[customer] == "subscribed" and "unsubscribed" or "subscribed"
  sub_status[customer] = status
  local body = '{"subscriptions":[{"channel":"email","status":"' .. status .. '","source":"bench"}]}'
  return wrk.format("PUT", "/v1/customers/" .. ids[customer] .. "/subscriptions", common.headers, body)
end

function request()
  local draw = math.random(total_weight)
  local name
  for _, kind in ipairs(kinds) do
    if draw <= kind.upto then
      name = kind.name
      break
    end
  end
  if name == "action" then
    local body = common.action_json(ids[math.random(seeds)], unique())
    return wrk.format("POST", "/v1/actions", common.headers, body)
  elseif name == "identify_existing" then
    return identify(string.format("seed%d@bench.example", math.random(seeds)))
  elseif name == "identify_new" then
    return identify(unique() .. "@bench.example")
  elseif name == "lookup_email" then
    return wrk.format("GET",
      string.format("/v1/customers/lookup?email=seed%d%%40bench.example", math.random(seeds)),
      common.headers)
  elseif name == "points_accrual" then
    return points(math.random(rich + 1, seeds), "accrual", "10")
  elseif name == "points_redemption" then
    return points(math.random(rich), "redemption", "1")
  elseif name == "subscription_change" then
    return subscription()
  end
  error("unknown kind in BENCH_MIX: " .. tostring(name))
end
