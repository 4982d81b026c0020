-- The load wrk sends, from the environment, so one script serves every scenario:
--   BENCH_METHOD, BENCH_BODY (JSON), BENCH_TOKEN (a bearer token) for one repeated request, or
--   BENCH_MIXED=1 for a mix from one admin: mostly reads of the own profile, with profile writes,
--   session and user listings and health checks between them.
-- done() prints one line, "BENCH {json}", which bench/run.py reads; wrk's own text is not parsed.
local token = os.getenv("BENCH_TOKEN") or ""
local headers = {["Content-Type"] = "application/json"}
if token ~= "" then
  headers["Authorization"] = "Bearer " .. token
end

local mixed = os.getenv("BENCH_MIXED") == "1"
local plan = {
  {"GET", "/api/v1/users/me"}, {"GET", "/api/v1/users/me"}, {"GET", "/api/v1/users/me"},
  {"GET", "/api/v1/users?limit=20"}, {"GET", "/api/v1/auth/sessions?limit=20"},
  {"PATCH", "/api/v1/users/me", true}, {"GET", "/healthz"}, {"GET", "/api/v1/users/me"},
}
local n = 0

if mixed then
  function request()
    n = n + 1
    local step = plan[(n % #plan) + 1]
    local body = nil
    if step[3] then
      body = string.format('{"display_name": "bench %d"}', n % 1000)
    end
    return wrk.format(step[1], step[2], headers, body)
  end
else
  wrk.method = os.getenv("BENCH_METHOD") or "GET"
  for name, value in pairs(headers) do
    wrk.headers[name] = value
  end
  local body = os.getenv("BENCH_BODY")
  if body and body ~= "" then
    wrk.body = body
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "socket_errors": %d, "non2xx": %d, "timeouts": %d, ' ..
    '"p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
