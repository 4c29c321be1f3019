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

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format("WRKRESULT readings_per_request=%d requests=%d duration_us=%d bytes=%d " ..
        "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d " ..
        "lat_mean_us=%.1f lat_p50_us=%d lat_p90_us=%d lat_p99_us=%d lat_max_us=%d\n",
        PER_REQUEST, summary.requests, summary.duration, summary.bytes,
        e.connect, e.read, e.write, e.status, e.timeout,
        latency.mean, latency:percentile(50), latency:percentile(90),
        latency:percentile(99), latency.max))
end
