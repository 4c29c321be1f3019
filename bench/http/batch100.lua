-- wrk script: POST /v1/readings with a JSON array of 100 readings per request (~3.8 KB).
-- 64 distinct bodies are pre-formatted in init(); readings cycle over 1,000 sensor names
-- per wrk thread with varying values. done() prints one machine-readable "WRKRESULT" line
-- that bench/http/run.sh parses (readings = requests without errors x 100).
-- Usage: wrk -t1 -c64 -d10s -s batch100.lua http://127.0.0.1:PORT/v1/readings

local PER_REQUEST, NBODIES, NSENSORS = 100, 64, 1000
local threads = 0
local reqs, idx = {}, 0

function setup(thread)
    thread:set("tid", threads)
    threads = threads + 1
end

function init(args)
    local t = tid or 0
    local headers = { ["Content-Type"] = "application/json" }
    for b = 0, NBODIES - 1 do
        local items = {}
        for k = 0, PER_REQUEST - 1 do
            local n = b * PER_REQUEST + k
            items[k + 1] = string.format('{"sensor":"bench/t%d/s%04d","value":%.2f}',
                                         t, n % NSENSORS, 20 + ((n * 37 + t) % 2000) / 100)
        end
        reqs[b + 1] = wrk.format("POST", nil, headers, "[" .. table.concat(items, ",") .. "]")
    end
end

function request()
    idx = idx % NBODIES + 1
    return reqs[idx]
end

-- The result line is shared with the other scripts; found beside this file.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
done = dofile(here .. "wrkresult.lua")(PER_REQUEST)
