-- wrk script: GET a path with X-Auth-Token. Arguments: token, path.
function init(args)
  token, path = args[1], args[2]
end

function request()
  return wrk.format("GET", path, {["X-Auth-Token"] = token})
end

done = dofile(os.getenv("BENCH_DIR") .. "/summary.lua")
