-- wrk script: POST /v2/manage/namespaces/<ns>/repos with X-Auth-Token, a distinct name per request.
-- Arguments (after --): token, namespace, run label.
local threads = {}

function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

function init(args)
  token, namespace, label = args[1], args[2], args[3]
  counter = 0
end

function request()
  counter = counter + 1
  local body = string.format('{"repository":"%s-t%d-%d","is_public":false}', label, thread_id, counter)
  return wrk.format("POST", "/v2/manage/namespaces/" .. namespace .. "/repos",
    {["Content-Type"] = "application/json", ["X-Auth-Token"] = token}, body)
end

done = dofile(os.getenv("BENCH_DIR") .. "/summary.lua")
