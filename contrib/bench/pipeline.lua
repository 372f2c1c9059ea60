-- pipeline.lua - wrk script: HTTP/1.1 pipelining, DEPTH GET requests of the
-- URL's path sent in one write, the next batch once all DEPTH answers are in.
--
-- usage: wrk -s contrib/bench/pipeline.lua URL [-- DEPTH]   (DEPTH default 16)
--
-- The batch is built once per thread, in init().  wrk calls request() once
-- at start-up and counts the requests in what it returns: that count is how
-- many responses it waits for per write, and each one is a request in its
-- "N requests in" and Requests/sec figures.

local batch

function init(args)
    local depth = tonumber(args[1]) or 16
    -- wrk.init() has set the Host header before it calls this init().
    batch = string.rep(wrk.format("GET", wrk.path), depth)
end

function request()
    return batch
end
