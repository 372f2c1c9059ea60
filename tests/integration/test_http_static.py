"""The http protocol's static files, timeouts and access log.

One weftd (1 worker) with two http listeners on a root made in the test's
temp dir (index.html, a 4 MiB binary file, a text file, a sub directory
without index, a symlink out of root and one inside it):
  * "web": open_file_valid = 0 (every request checks its file), an access
    log, body_timeout = 500 ms, keepalive_timeout = 1500 ms;
  * "links": symlinks = true, open_files = 0 (no cache).
Checks over raw sockets:
  * GET and HEAD of a file: 200, Content-Type from the extension,
    Content-Length, Last-Modified, ETag, Accept-Ranges; "/" serves
    index.html; the 4 MiB file arrives whole and equal (sendfile);
  * 304 for If-None-Match (one tag, a list, "*", W/) and for
    If-Modified-Since; 200 again when the date is older; If-None-Match
    wins over If-Modified-Since;
  * Range: 206 with Content-Range for "bytes=A-B", "A-" and "-N"; 416
    with "bytes */size" beyond the end; several ranges or another unit:
    the whole file; If-Range with a stale tag: the whole file;
  * curl: 304 for If-None-Match and -z, 206 for -r, 416;
  * 404 for a missing file, 301 with Location for a directory without
    its slash, 403 for a directory without index;
  * traversal: "/../", "%2e%2e", "%2E%2e%2f", ".%2e", "//..", a NUL:
    403/400/404 and never the secret file outside root; a symlink out of
    root: 403 on "web", served on "links"; a symlink inside root: served;
  * a changed file is served new at once (open_file_valid = 0);
  * POST to a file: 405;
  * pipelined GETs of a file and a route answered in order;
  * body_timeout: a body that stops coming is answered 408 and closed;
  * keepalive_timeout: an idle connection is closed after it;
  * defer_accept (on by default for http): a connection that sends
    nothing is not accepted, while others are served; once it sends, it
    is accepted and answered;
  * the access log has one Common Log Format line per request, with the
    status and bytes; renamed away, it is opened again under its path;
  * stats: responses_2xx/3xx/4xx add up to requests, the latency
    histogram counts every request, and `weftctl metrics` with the http
    histogram passes promtool.
"""

import os
import re
import shutil
import socket
import subprocess
import time

import weftlib as W
from test_http import Conn, request


def make_root(tmp):
    root = os.path.join(tmp, "www")
    os.makedirs(os.path.join(root, "sub"))
    os.makedirs(os.path.join(root, "empty"))
    os.makedirs(os.path.join(root, "a b"))
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write("<h1>index</h1>\n")
    with open(os.path.join(root, "sub", "a.txt"), "w") as f:
        f.write("0123456789abcdefghij")
    with open(os.path.join(root, "sub", "index.html"), "w") as f:
        f.write("sub index\n")
    big = os.urandom(4 << 20)
    with open(os.path.join(root, "big.bin"), "wb") as f:
        f.write(big)
    secret = os.path.join(tmp, "secret.txt")
    with open(secret, "w") as f:
        f.write("SECRET\n")
    os.symlink(secret, os.path.join(root, "out.txt"))
    os.symlink("sub/a.txt", os.path.join(root, "in.txt"))
    return root, big


def config(root, port, port2, log):
    return ("workers = 1;\n"
            "listeners = (\n"
            '  { name = "web"; listen = "127.0.0.1:%d"; protocol = "http";\n'
            '    http = { root = "%s"; open_file_valid = 0;\n'
            '             access_log = "%s"; body_timeout = 500;\n'
            '             keepalive_timeout = 1500;\n'
            '             routes = ( { path = "/hello"; body = "Hello"; } );'
            ' }; },\n'
            '  { name = "links"; listen = "127.0.0.1:%d"; protocol = "http";\n'
            '    http = { root = "%s"; symlinks = true; open_files = 0; }; }\n'
            ");\n" % (port, root, log, port2, root))


def get(port, path, headers="", method="GET"):
    raw = ("%s %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (method, path, headers))
    return request(port, raw.encode("latin-1"), head_only=method == "HEAD")


def files(port, big):
    st, h, body = get(port, "/sub/a.txt")
    W.check(st == 200 and body == b"0123456789abcdefghij", "GET: %r" % st)
    W.check(h["content-type"].startswith("text/plain") and
            h["content-length"] == "20" and "last-modified" in h and
            h["etag"].startswith('"') and h["accept-ranges"] == "bytes",
            "file headers: %r" % h)
    st, h2, body = get(port, "/sub/a.txt", method="HEAD")
    W.check(st == 200 and body == b"" and h2["content-length"] == "20" and
            h2["etag"] == h["etag"], "HEAD: %r %r" % (st, h2))
    st, h, body = get(port, "/")
    W.check(st == 200 and body == b"<h1>index</h1>\n" and
            h["content-type"].startswith("text/html"), "index: %r" % st)
    st, h, body = get(port, "/big.bin")
    W.check(st == 200 and body == big, "4 MiB file: %r, %d bytes"
            % (st, len(body)))
    W.check(h["content-type"] == "application/octet-stream",
            "type of .bin: %r" % h["content-type"])
    W.log("ok   files: GET, HEAD, index, 4 MiB by sendfile")
    return get(port, "/sub/a.txt")[1]


def conditional(port, h):
    etag, lm = h["etag"], h["last-modified"]
    for inm in (etag, '"x", %s' % etag, "*", "W/" + etag):
        st, h2, body = get(port, "/sub/a.txt", "If-None-Match: %s\r\n" % inm)
        W.check(st == 304 and body == b"" and h2.get("etag") == etag,
                "If-None-Match %s: %r" % (inm, st))
    st, _, _ = get(port, "/sub/a.txt", 'If-None-Match: "other"\r\n')
    W.check(st == 200, "other tag: %r" % st)
    st, _, _ = get(port, "/sub/a.txt", "If-Modified-Since: %s\r\n" % lm)
    W.check(st == 304, "If-Modified-Since: %r" % st)
    old = "Thu, 01 Jan 1970 00:00:01 GMT"
    st, _, _ = get(port, "/sub/a.txt", "If-Modified-Since: %s\r\n" % old)
    W.check(st == 200, "older If-Modified-Since: %r" % st)
    st, _, _ = get(port, "/sub/a.txt", 'If-None-Match: "other"\r\n'
                   "If-Modified-Since: %s\r\n" % lm)
    W.check(st == 200, "If-None-Match must win over IMS: %r" % st)
    W.log("ok   conditional: 304 by ETag (one, list, *, W/) and by date")


def ranges(port, h):
    cases = (("bytes=0-3", 206, b"0123", "bytes 0-3/20"),
             ("bytes=15-", 206, b"fghij", "bytes 15-19/20"),
             ("bytes=-2", 206, b"ij", "bytes 18-19/20"),
             ("bytes=5-100", 206, b"56789abcdefghij", "bytes 5-19/20"),
             ("bytes=20-", 416, b"", "bytes */20"),
             ("bytes=0-1,4-5", 200, b"0123456789abcdefghij", None),
             ("items=0-1", 200, b"0123456789abcdefghij", None))
    for rng, want, body_want, cr in cases:
        st, h2, body = get(port, "/sub/a.txt", "Range: %s\r\n" % rng)
        W.check(st == want and body == body_want and
                h2.get("content-range") == cr,
                "Range %s: %r %r %r" % (rng, st, body, h2.get("content-range")))
    st, _, body = get(port, "/sub/a.txt", 'Range: bytes=0-1\r\n'
                      'If-Range: "stale"\r\n')
    W.check(st == 200 and len(body) == 20, "stale If-Range: %r" % st)
    st, _, body = get(port, "/sub/a.txt", "Range: bytes=0-1\r\n"
                      "If-Range: %s\r\n" % h["etag"])
    W.check(st == 206 and body == b"01", "matching If-Range: %r" % st)
    W.log("ok   ranges: 206 x4, 416, multi-range and other unit whole, "
          "If-Range")


def statuses(port):
    st, _, _ = get(port, "/nope.txt")
    W.check(st == 404, "missing: %r" % st)
    st, h, _ = get(port, "/sub")
    W.check(st == 301 and h.get("location") == "/sub/", "dir without /: "
            "%r %r" % (st, h.get("location")))
    st, h, _ = get(port, "/a%20b")
    W.check(st == 301 and h.get("location") == "/a%20b/",
            "Location re-encoded: %r %r" % (st, h.get("location")))
    st, _, body = get(port, "/sub/")
    W.check(st == 200 and body == b"sub index\n", "sub index: %r" % st)
    st, _, _ = get(port, "/empty/")
    W.check(st == 403, "directory without index: %r" % st)
    st, h, _ = request(port, b"POST /sub/a.txt HTTP/1.1\r\nHost: x\r\n"
                       b"Content-Length: 3\r\n\r\nabc")
    W.check(st == 405, "POST to a file: %r" % st)
    W.log("ok   statuses: 404, 301 with Location, 403 without index, 405")


def traversal(port, port2):
    attempts = ("/../secret.txt", "/%2e%2e/secret.txt",
                "/%2E%2e%2fsecret.txt", "/.%2e/secret.txt",
                "/sub/../../secret.txt", "//../secret.txt",
                "/sub/%2e%2e/%2e%2e/secret.txt", "/%00/../secret.txt",
                "/..%5csecret.txt", "/sub/..%2f..%2fsecret.txt")
    for path in attempts:
        for p in (port, port2):
            st, _, body = get(p, path)
            W.check(st in (400, 403, 404) and b"SECRET" not in body,
                    "traversal %s: %r %r" % (path, st, body[:40]))
    st, _, body = get(port, "/out.txt")
    W.check(st == 403 and b"SECRET" not in body, "symlink out: %r" % st)
    st, _, body = get(port2, "/out.txt")
    W.check(st == 200 and body == b"SECRET\n", "symlinks = true: %r" % st)
    st, _, body = get(port, "/in.txt")
    W.check(st == 200 and body == b"0123456789abcdefghij",
            "symlink inside root: %r" % st)
    W.log("ok   traversal: %d attempts refused on both listeners; symlink "
          "out 403 (allowed with symlinks = true), inside served"
          % len(attempts))


def changed(port, root):
    path = os.path.join(root, "sub", "a.txt")
    st, _, body = get(port, "/sub/a.txt")
    with open(path + ".new", "w") as f:
        f.write("changed")
    os.rename(path + ".new", path)
    st, _, body = get(port, "/sub/a.txt")
    W.check(st == 200 and body == b"changed", "after a change: %r %r"
            % (st, body))
    with open(path + ".new", "w") as f:
        f.write("0123456789abcdefghij")
    os.rename(path + ".new", path)
    W.log("ok   a replaced file is served new (open_file_valid = 0)")


def pipelined(port):
    c = Conn(port)
    try:
        c.sendall(b"GET /sub/a.txt HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /sub/a.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\n"
                  b"\r\n"
                  b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
        want = [(200, b"0123456789abcdefghij"), (200, b"Hello"), (206, b"01"),
                (404, None)]
        for st_want, body_want in want:
            st, _, body = c.response()
            W.check(st == st_want and (body_want is None or
                                       body == body_want),
                    "pipelined: %r %r, want %r" % (st, body, st_want))
    finally:
        c.close()
    W.log("ok   pipelined file, route, range, 404 in order")


def timeouts(port):
    c = Conn(port)
    t0 = time.monotonic()
    c.sendall(b"POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n"
              b"\r\nabc")
    r = c.response()
    took = time.monotonic() - t0
    W.check(r is not None and r[0] == 408, "stalled body: %r" % (r and r[0]))
    c.expect_closed()
    c.close()
    W.log("ok   body_timeout: 408 after %.2f s" % took)
    c = Conn(port)
    c.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    W.check(c.response()[0] == 200, "keep-alive request")
    t0 = time.monotonic()
    c.s.settimeout(15)
    data = c.s.recv(100)
    took = time.monotonic() - t0
    W.check(data == b"", "idle connection got %r" % data)
    W.check(took >= 1.0, "closed after %.2f s, before keepalive_timeout"
            % took)
    c.close()
    W.log("ok   keepalive_timeout: idle connection closed after %.2f s"
          % took)


def curl_checks(port, h):
    """The same answers through a real client: 304 and 206 with curl."""
    if not shutil.which("curl"):
        W.log("SKIPPED curl checks: no curl (Debian package curl)")
        return
    url = "http://127.0.0.1:%d/sub/a.txt" % port

    def curl(*args):
        p = subprocess.run(["curl", "-s", "-o", "-", "-w",
                            "\n%{http_code}"] + list(args) + [url],
                           capture_output=True, timeout=30)
        body, _, code = p.stdout.rpartition(b"\n")
        return int(code), body
    code, body = curl("-H", "If-None-Match: %s" % h["etag"])
    W.check(code == 304 and body == b"", "curl If-None-Match: %r" % code)
    code, body = curl("-z", h["last-modified"])
    W.check(code == 304, "curl -z (If-Modified-Since): %r" % code)
    code, body = curl("-r", "3-6")
    W.check(code == 206 and body == b"3456", "curl -r 3-6: %r %r"
            % (code, body))
    code, body = curl("-r", "100-")
    W.check(code == 416, "curl -r 100-: %r" % code)
    W.log("ok   curl: 304 by ETag and by -z, 206 for -r 3-6, 416")


def deferred(d, port):
    """http listeners defer accepting until the first bytes arrive."""
    sock = os.path.join(d.tmpdir, "weft.sock")

    def accepted():
        st = W.ctl_json(sock, "stats")
        return [x for x in st["listeners"] if x["name"] == "web"][0][
            "connections_accepted"]
    before = accepted()
    idle = socket.create_connection((W.LOOPBACK, port), timeout=W.IO_TIMEOUT)
    try:
        st, _, _ = get(port, "/hello")
        W.check(st == 200, "request beside an idle connection: %r" % st)
        W.check(accepted() == before + 1, "the silent connection was "
                "accepted: %d -> %d" % (before, accepted()))
        idle.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        W.check(idle.recv(4096).startswith(b"HTTP/1.1 200"),
                "the deferred connection once it spoke")
        W.check(accepted() == before + 2, "accepted after its request: "
                "%d -> %d" % (before, accepted()))
    finally:
        idle.close()
    W.log("ok   defer_accept: a silent connection is not accepted until it "
          "sends")


def stats(d, tmp):
    """The status classes and the latency histogram count the answers."""
    from test_control import promtool_check
    sock = os.path.join(d.tmpdir, "weft.sock")
    st = W.ctl_json(sock, "stats")
    web = [x for x in st["listeners"] if x["name"] == "web"][0]
    classes = sum(web["responses_%dxx" % k] for k in range(1, 6))
    W.check(web["responses_2xx"] > 20 and web["responses_3xx"] >= 5 and
            web["responses_4xx"] >= 5, "status classes: %r"
            % {k: v for k, v in web.items() if k.startswith("responses")})
    W.check(classes == web["requests"], "classes %d != requests %d"
            % (classes, web["requests"]))
    lat = web["latency"]
    W.check(lat["count"] == web["requests"] and lat["p50_us"] > 0 and
            lat["p99_us"] >= lat["p50_us"], "latency: %r" % lat)
    rc, text, err = W.weftctl(sock, "metrics")
    W.check(rc == 0 and 'weft_request_duration_seconds_bucket{listener="web"'
            in text, "no http histogram in metrics: %s" % err)
    promtool_check(text, "http-metrics", tmp)
    W.log("ok   stats: %d requests = 2xx %d + 3xx %d + 4xx %d + ..., "
          "latency p50 %d us, p99 %d us" % (web["requests"],
                                           web["responses_2xx"],
                                           web["responses_3xx"],
                                           web["responses_4xx"],
                                           lat["p50_us"], lat["p99_us"]))


def rotation(port, log):
    """A log renamed away: the worker opens the path again by itself."""
    os.rename(log, log + ".1")

    def lines_in_new():
        get(port, "/sub/a.txt", "X-Rotated: 1\r\n")
        if not os.path.exists(log):
            return False
        with open(log) as f:
            return "GET /sub/a.txt" in f.read()
    W.wait_for(lines_in_new, 15, "lines in the reopened access log",
               interval=0.2)
    W.log("ok   access log rotated by rename: new lines in a new file")


def access_log(log, before):
    line_re = re.compile(r'^127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d '
                         r'\+0000\] "([^"]*)" (\d{3}) (\d+|-)$')

    def lines():
        if not os.path.exists(log):
            return []
        with open(log) as f:
            return f.read().splitlines()
    W.wait_for(lambda: len(lines()) >= before, 10, "the access log")
    got = lines()
    for line in got:
        W.check(line_re.match(line), "not a CLF line: %r" % line)
    m = [line_re.match(x) for x in got]
    W.check(any(x.group(1) == "GET /sub/a.txt HTTP/1.1" and
                x.group(2) == "200" and x.group(3) == "20" for x in m),
            "no line for GET /sub/a.txt 200 20")
    W.check(any(x.group(2) == "304" and x.group(3) == "-" for x in m),
            "no 304 line")
    W.log("ok   access log: %d CLF lines" % len(got))


def main():
    port, port2 = W.free_port("tcp"), W.free_port("tcp")
    tmp = W.make_tmpdir()
    root, big = make_root(tmp)
    log = os.path.join(tmp, "access.log")
    with W.Weftd(config(root, port, port2, log)) as d:
        for p in (port, port2):
            W.wait_for(lambda: W.tcp_answers(p), 20, "port %d" % p)
        h = files(port, big)
        conditional(port, h)
        ranges(port, h)
        curl_checks(port, h)
        statuses(port)
        traversal(port, port2)
        changed(port, root)
        pipelined(port)
        timeouts(port)
        deferred(d, port)
        access_log(log, 40)
        stats(d, tmp)
        rotation(port, log)


if __name__ == "__main__":
    W.run(main, timeout=120)
