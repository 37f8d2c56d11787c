-- wrk script: replay requests signed in advance with SDK-HMAC-SHA256 (one per line of a file:
-- path TAB X-Sdk-Date TAB Authorization TAB body). Thread t sends lines t, t+T, t+2T, ...
local threads = {}

function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

function init(args)
  lines = {}
  for line in io.lines(args[1]) do
    table.insert(lines, line)
  end
  thread_count = tonumber(args[2])
  index = thread_id + 1
end

function request()
  local line = lines[index]
  index = index + thread_count
  if index > #lines then index = thread_id + 1 end
  local path, date, authorization, body = line:match("([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)")
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/json", ["X-Sdk-Date"] = date, ["Authorization"] = authorization,
  }, body)
end

done = dofile(os.getenv("BENCH_DIR") .. "/summary.lua")
