-- Shared by the wrk scripts here: a done() that prints one machine-readable
-- "WRKRESULT" line (counts, errors, latency percentiles) for run.sh to parse.
-- Usage: done = dofile(dir .. "wrkresult.lua")(readings_per_request)
return function(per_request)
    return function(summary, latency, requests)
        local e = summary.errors
        io.write(string.format("WRKRESULT readings_per_request=%d requests=%d duration_us=%d " ..
            "bytes=%d err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d " ..
            "lat_mean_us=%.1f lat_p50_us=%d lat_p90_us=%d lat_p99_us=%d lat_max_us=%d\n",
            per_request, summary.requests, summary.duration, summary.bytes,
            e.connect, e.read, e.write, e.status, e.timeout,
            latency.mean, latency:percentile(50), latency:percentile(90),
            latency:percentile(99), latency.max))
    end
end
