"""The http protocol against real clients: curl, ApacheBench and wrk.

One weftd (2 workers) with an http listener serving two fixed routes,
/hello and /other, max_body = 4 MiB. Checks:
  * curl: two URLs in one invocation share one connection (num_connects
    1 then 0, "Re-using existing connection"), with the right bodies;
    HEAD (-I) gives the headers, Content-Length 13 and no body (a GET
    after it on the same connection still reads its own answer); an
    unknown path is 404; POST of a 2 MiB file with Expect: 100-continue
    sees the 100 Continue, uploads the whole body and gets 405 with
    Allow: GET, HEAD (routes answer GET and HEAD only);
  * ab -k -n 20000 -c 50: every request complete, 0 failed, 0 non-2xx,
    every one on a kept-alive connection;
  * wrk -d 3 -c 50: no socket errors, no non-2xx/3xx answers;
  * a 100 KiB header over a raw socket: 431, then the connection closes.
A tool that is not installed skips its part with a message (the whole
test exits 77 only when curl, ab and wrk are all missing; contrib/test.sh
installs them). Every tool runs with its own time limit and a bounded
number of requests; every process is killed at the end.
"""

import os
import re
import shutil
import socket
import subprocess
import threading
import time

import weftlib as W

HELLO = b"Hello, World!"
OTHER = b"another route"
UPLOAD_SIZE = 2 << 20           # above curl's own Expect threshold too
AB_REQUESTS = 20000
CONCURRENCY = 50
WRK_SECONDS = 3
TOOL_TIMEOUT = 90               # seconds, for one run of one tool


def config(port):
    return ("workers = 2;\n"
            "shutdown_timeout = 10;\n"
            "listeners = (\n"
            '  { name = "web"; listen = "127.0.0.1:%d"; protocol = "http";\n'
            "    http = { max_body = %d;\n"
            '             routes = ( { path = "/hello"; body = "%s";'
            ' type = "text/plain"; },\n'
            '                        { path = "/other"; body = "%s";'
            ' type = "text/plain"; } ); }; }\n'
            ");\n" % (port, 2 * UPLOAD_SIZE, HELLO.decode(),
                      OTHER.decode()))


def run_tool(argv, timeout=TOOL_TIMEOUT):
    """Run a client to completion with a deadline; (rc, stdout, stderr).

    Started as a helper so that the cleanup kills it if the test dies.
    """
    W.log("running %s" % " ".join(argv).replace("\n", "\\n"))
    p = W.spawn_helper(argv, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise W.TestFailure("%s did not finish within %d s"
                            % (argv[0], timeout))
    return (p.returncode, out.decode("utf-8", "replace"),
            err.decode("utf-8", "replace"))


def curl(*args):
    """curl without any curlrc or proxy, bounded in time."""
    return run_tool(["curl", "-q", "--noproxy", "*", "--max-time", "30",
                     "--connect-timeout", "10"] + list(args))


def responses(verbose):
    """The status lines curl -v received, as ints, in order."""
    return [int(m) for m in re.findall(r"^< HTTP/1\.[01] (\d{3})", verbose,
                                       re.M)]


def curl_keepalive(base, tmp):
    a, b = os.path.join(tmp, "a.out"), os.path.join(tmp, "b.out")
    rc, out, err = curl("-sS", "-v", "-w", "%{http_code} %{num_connects}\n",
                        "-o", a, base + "/hello", "-o", b, base + "/other")
    W.check(rc == 0, "curl two URLs: exit %d\n%s" % (rc, err))
    W.check(out.split() == ["200", "1", "200", "0"],
            "curl two URLs: codes and connects %r, want 200 1 200 0\n%s"
            % (out, err))
    W.check(re.search(r"Re-using existing connection", err) is not None,
            "curl did not say it reused the connection:\n%s" % err)
    W.check(err.count("Connected to ") == 1,
            "curl connected %d times:\n%s" % (err.count("Connected to "), err))
    with open(a, "rb") as f:
        W.check(f.read() == HELLO, "body of /hello")
    with open(b, "rb") as f:
        W.check(f.read() == OTHER, "body of /other")
    W.log("ok   curl: two URLs on one connection (num_connects 1, 0)")


def curl_head(base, tmp):
    body = os.path.join(tmp, "after-head.out")
    # HEAD, then a GET on the same connection: a body sent after the HEAD
    # answer would be read as the start of the GET's answer.
    rc, out, err = curl("-sS", "-v", "-I", "-w",
                        "\n@@ %{http_code} %{size_download} %{num_connects}\n",
                        base + "/hello", "--next", "-sS", "-v", "-o", body,
                        base + "/hello")
    W.check(rc == 0, "curl -I: exit %d\n%s" % (rc, err))
    head, _, tail = out.partition("\n@@ ")
    lines = head.replace("\r", "").split("\n")
    W.check(re.match(r"HTTP/1\.1 200 ", lines[0]) is not None,
            "curl -I status line %r" % lines[0])
    hdrs = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            hdrs[k.strip().lower()] = v.strip()
    W.check(hdrs.get("content-length") == str(len(HELLO)),
            "curl -I: Content-Length %r" % hdrs.get("content-length"))
    W.check(hdrs.get("content-type", "").startswith("text/plain") and
            "date" in hdrs, "curl -I headers: %r" % hdrs)
    W.check(tail.split() == ["200", "0", "1"],
            "curl -I: code, bytes of body, connects %r" % tail)
    # --write-out is curl's global option: the GET is seen in -v.
    W.check(responses(err) == [200, 200] and
            "Re-using existing connection" in err and
            err.count("Connected to ") == 1,
            "GET after HEAD on the same connection:\n%s" % err)
    with open(body, "rb") as f:
        got = f.read()
    W.check(got == HELLO, "GET after HEAD read %r" % got)
    W.log("ok   curl -I: 200, Content-Length %d, no body; GET after it "
          "on the same connection" % len(HELLO))


def curl_404(base, tmp):
    path = os.path.join(tmp, "404.out")
    rc, out, err = curl("-sS", "-o", path, "-w", "%{http_code}",
                        base + "/no/such/path")
    W.check(rc == 0 and out == "404", "unknown path: exit %d, code %r\n%s"
            % (rc, out, err))
    W.log("ok   curl: unknown path 404")


def curl_expect(base, tmp):
    path = os.path.join(tmp, "upload.bin")
    with open(path, "wb") as f:
        f.write(os.urandom(UPLOAD_SIZE))
    out_path = os.path.join(tmp, "expect.out")
    t0 = time.monotonic()
    rc, out, err = curl("-sS", "-v", "-H", "Expect: 100-continue",
                        "--expect100-timeout", "20",
                        "--data-binary", "@" + path, "-o", out_path, "-w",
                        "%{http_code} %{size_upload}", base + "/hello")
    took = time.monotonic() - t0
    W.check(rc == 0, "curl Expect: exit %d\n%s" % (rc, err[-3000:]))
    W.check(re.search(r"^> Expect: 100-continue", err, re.M) is not None,
            "curl sent no Expect header:\n%s" % err[-3000:])
    codes = responses(err)
    # The 100 comes before the body; without it curl would have waited
    # the whole --expect100-timeout before sending.
    W.check(codes == [100, 405], "status lines %r, want [100, 405]\n%s"
            % (codes, err[-3000:]))
    W.check(took < 15, "curl took %.1f s: it waited for the 100" % took)
    code, sent = out.split()
    W.check(code == "405" and int(sent) == UPLOAD_SIZE,
            "code %s after uploading %s of %d bytes"
            % (code, sent, UPLOAD_SIZE))
    W.check(re.search(r"^< Allow: GET, HEAD", err, re.M | re.I) is not None,
            "405 without Allow: GET, HEAD:\n%s" % err[-3000:])
    W.log("ok   curl Expect: 100 Continue, %d bytes uploaded, 405 with "
          "Allow (%.2f s)" % (UPLOAD_SIZE, took))


def field(text, label, tool):
    """The integer after `label` in a report, or a failure naming it."""
    m = re.search(r"^\s*%s\s*(\d+)" % re.escape(label), text, re.M)
    W.check(m is not None, "no %r in the %s report:\n%s" % (label, tool, text))
    return int(m.group(1))


def ab(base):
    rc, out, err = run_tool(["ab", "-q", "-k", "-s", "20", "-n",
                             str(AB_REQUESTS), "-c", str(CONCURRENCY),
                             base + "/hello"])
    W.check(rc == 0, "ab: exit %d\n%s\n%s" % (rc, out, err))
    done = field(out, "Complete requests:", "ab")
    failed = field(out, "Failed requests:", "ab")
    kept = field(out, "Keep-Alive requests:", "ab")
    non2xx = re.search(r"^Non-2xx responses:\s*(\d+)", out, re.M)
    W.check(done == AB_REQUESTS and failed == 0,
            "ab: %d complete, %d failed\n%s" % (done, failed, out))
    W.check(non2xx is None or int(non2xx.group(1)) == 0,
            "ab: non-2xx responses\n%s" % out)
    W.check(kept == AB_REQUESTS, "ab: %d of %d requests kept alive\n%s"
            % (kept, AB_REQUESTS, out))
    rate = re.search(r"^Requests per second:\s*([\d.]+)", out, re.M)
    W.log("ok   ab -k -n %d -c %d: 0 failed, 0 non-2xx, all kept alive, "
          "%s requests/s" % (AB_REQUESTS, CONCURRENCY,
                             rate.group(1) if rate else "?"))


def wrk(base):
    rc, out, err = run_tool(["wrk", "-t", "2", "-c", str(CONCURRENCY),
                             "-d", "%ds" % WRK_SECONDS, "--timeout", "5s",
                             base + "/hello"],
                            timeout=WRK_SECONDS + TOOL_TIMEOUT)
    W.check(rc == 0, "wrk: exit %d\n%s\n%s" % (rc, out, err))
    W.check("Socket errors" not in out, "wrk: socket errors\n%s" % out)
    W.check("Non-2xx" not in out, "wrk: non-2xx answers\n%s" % out)
    m = re.search(r"^\s*(\d+) requests in ([\d.]+\w+)", out, re.M)
    W.check(m is not None and int(m.group(1)) > 0,
            "wrk: no requests counted\n%s" % out)
    rate = re.search(r"^Requests/sec:\s*([\d.]+)", out, re.M)
    W.log("ok   wrk -d %d -c %d: %s requests in %s, no socket errors, "
          "no non-2xx, %s requests/s" % (WRK_SECONDS, CONCURRENCY, m.group(1),
                                        m.group(2),
                                        rate.group(1) if rate else "?"))


def big_header(port):
    """A 100 KiB header: 431 and a closed connection."""
    raw = (b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 102400 +
           b"\r\n\r\n")
    s = socket.create_connection((W.LOOPBACK, port), timeout=W.IO_TIMEOUT)

    # The server answers after max_head bytes and closes with the rest
    # unread, which resets the connection: send from a thread so that the
    # answer is read whatever happens to the sending.
    def send():
        try:
            s.sendall(raw)
        except OSError:
            pass
    t = threading.Thread(target=send, daemon=True)
    t.start()
    got = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    except ConnectionResetError:
        pass
    except socket.timeout:
        raise W.TestFailure("no end of the 431 answer after %.0f s; got %r"
                            % (W.IO_TIMEOUT, got[:200]))
    finally:
        t.join(W.IO_TIMEOUT)
        s.close()
    W.check(got.startswith(b"HTTP/1.1 431 "), "100 KiB header: %r"
            % got[:200])
    W.check(b"\r\nconnection: close\r\n" in got.lower(),
            "431 without Connection: close: %r" % got[:300])
    W.log("ok   100 KiB header: 431, connection closed")


def main():
    port = W.free_port("tcp")
    base = "http://%s:%d" % (W.LOOPBACK, port)
    with W.Weftd(config(port)) as d:
        d.wait_workers(2)
        W.wait_for(lambda: W.tcp_answers(port), 20, "the http port")
        big_header(port)
        missing = [t for t in ("curl", "ab", "wrk") if not shutil.which(t)]
        for tool in missing:
            W.log("SKIPPED: %s is not installed (Debian package %s): its "
                  "part is not run" % (tool, {"ab": "apache2-utils"}
                                       .get(tool, tool)))
        if "curl" not in missing:
            curl_keepalive(base, d.tmpdir)
            curl_head(base, d.tmpdir)
            curl_404(base, d.tmpdir)
            curl_expect(base, d.tmpdir)
        if "ab" not in missing:
            ab(base)
        if "wrk" not in missing:
            wrk(base)
        W.check(d.running(), "weftd exited during the test")
        if len(missing) == 3:
            raise W.Skip("none of curl, ab, wrk is installed")


if __name__ == "__main__":
    W.run(main, timeout=240)
