-- wrk script: POST /v1/readings with ONE reading per request.
-- Bodies are pre-formatted in init() (wrk then spends only a table lookup per request);
-- 4,096 of them cycle over 1,000 sensor names per wrk thread with varying values.
-- done() prints one machine-readable "WRKRESULT" line that bench/http/run.sh parses.
-- Usage: wrk -t1 -c64 -d10s -s single.lua http://127.0.0.1:PORT/v1/readings

local NBODIES, NSENSORS = 4096, 1000
local threads = 0
local reqs, idx = {}, 0

function setup(thread)
    thread:set("tid", threads)
    threads = threads + 1
end

function init(args)
    local t = tid or 0
    local headers = { ["Content-Type"] = "application/json" }
    for i = 0, NBODIES - 1 do
        local body = string.format('{"sensor":"bench/t%d/s%04d","value":%.2f}',
                                   t, i % NSENSORS, 20 + ((i * 37 + t) % 2000) / 100)
        reqs[i + 1] = wrk.format("POST", nil, headers, body)
    end
end

function request()
    idx = idx % NBODIES + 1
    return reqs[idx]
end

-- The result line is shared with the other scripts; found beside this file.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
done = dofile(here .. "wrkresult.lua")(1)
