"""The admin listener's stats page, in a real browser (Debian's chromium,
headless; the test is skipped with a message when it is not installed).

  * GET / is a self-contained HTML page (no external script, style or
    font), /stats.json the JSON of `weftctl stats`, /metrics Prometheus;
  * headless Chromium loads the page with a virtual time budget: its
    script polls stats.json every second, and by the DOM dump it has
    refreshed at least twice;
  * the numbers in the page match weftctl stats taken around the dump:
    generation, the workers' pids, the listener's accepted connections
    and the requests (between the values before and after the dump);
  * under load (a client thread making requests) the requests in a second
    dump have grown; after a worker is killed with SIGKILL the page lists
    the crash among the recent events;
  * a screenshot is written to the build directory (stats_page.png).

Synchronisation: conditions with deadlines (the port answering, the
workers, the counters), never a fixed sleep.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import urllib.request

sys.dont_write_bytecode = True    # no __pycache__ in the source tree
import weftlib as W  # noqa: E402

DEADLINE = 20.0
BUDGET_MS = 2500    # virtual time the page runs for: two polls at least


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise W.Skip("no chromium installed (Debian package chromium; "
                 "contrib/test.sh installs it): the browser test is skipped")


def browser(binary, url, *extra):
    """Headless chromium on url; its standard output."""
    argv = [binary, "--headless=new", "--no-sandbox", "--disable-gpu",
            "--disable-dev-shm-usage", "--no-first-run",
            "--user-data-dir=" + W.make_tmpdir(),
            "--virtual-time-budget=%d" % BUDGET_MS] + list(extra) + [url]
    p = subprocess.run(argv, capture_output=True, timeout=120)
    W.check(p.returncode == 0, "chromium exit %d: %s" % (
        p.returncode, p.stderr.decode(errors="replace")[-800:]))
    return p.stdout.decode(errors="replace")


def attr(dom, name):
    m = re.search(r'data-%s="(\d+)"' % name, dom)
    W.check(m is not None, "no data-%s in the page" % name)
    return int(m.group(1))


def get(url):
    with urllib.request.urlopen(url, timeout=W.IO_TIMEOUT) as r:
        return r.status, r.headers.get("Content-Type"), r.read()


class Load:
    """Requests in a thread until stopped."""

    def __init__(self, port):
        self.port, self.stop, self.done = port, False, 0
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop:
            try:
                s = socket.create_connection(("127.0.0.1", self.port),
                                             timeout=W.IO_TIMEOUT)
                for _ in range(50):
                    s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
                    got = b""
                    while not got.endswith(b"hi"):
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        got += chunk
                    self.done += 1
                s.close()
            except OSError:
                pass

    def end(self):
        self.stop = True
        self.t.join(DEADLINE)


def main():
    binary = chromium()
    admin, web = W.free_port("tcp"), W.free_port("tcp")
    conf = ("workers = 2;\ncpu_affinity = false;\n"
            'admin = { listen = "127.0.0.1:%d"; };\n'
            "listeners = (\n"
            '  { name = "web"; listen = "127.0.0.1:%d"; protocol = "http";\n'
            '    http = { routes = ( { path = "/hello"; body = "hi"; } ); };'
            " }\n);\n" % (admin, web))
    base = "http://127.0.0.1:%d" % admin
    with W.Weftd(conf) as d:
        sock = os.path.join(d.tmpdir, "weft.sock")
        d.wait_workers(2)
        W.wait_for(lambda: W.tcp_answers(admin) and W.tcp_answers(web)
                   or None, DEADLINE, "the admin and web ports")
        st, ctype, page = get(base + "/")
        W.check(st == 200 and ctype.startswith("text/html"), "GET /: %r" %
                ctype)
        W.check(not re.search(rb'<script[^>]+src=|<link[^>]+href=|@import|'
                              rb'url\(', page),
                "the page loads something from elsewhere")
        st, ctype, body = get(base + "/stats.json")
        W.check(st == 200 and ctype == "application/json" and
                body.startswith(b'{"ok": true'), "stats.json: %r" % ctype)
        W.check(get(base + "/metrics")[0] == 200, "/metrics")

        load = Load(web)
        try:
            W.wait_for(lambda: load.done > 100 or None, DEADLINE, "load")
            before = W.ctl_json(sock, "stats")
            dom = browser(binary, base + "/", "--dump-dom")
            after = W.ctl_json(sock, "stats")
            W.check(attr(dom, "refreshes") >= 2,
                    "the page refreshed %d times" % attr(dom, "refreshes"))
            W.check(attr(dom, "generation") == after["generation"],
                    "generation %d" % attr(dom, "generation"))
            req = attr(dom, "requests")
            W.check(before["totals"]["requests"] <= req <=
                    after["totals"]["requests"],
                    "requests %d not within %d..%d" % (
                        req, before["totals"]["requests"],
                        after["totals"]["requests"]))
            pids = set(int(p) for p in re.findall(r'<tr data-pid="(\d+)"',
                                                  dom))
            want = set(w["pid"] for w in after["workers"])
            W.check(pids == want, "workers in the page %r, weftctl %r"
                    % (pids, want))
            m = re.search(r'<tr data-name="web">.*?data-field='
                          r'"connections_accepted" data-value="(\d+)"', dom,
                          re.S)
            W.check(m is not None, "no web listener row")
            acc = int(m.group(1))
            lw = [l for l in after["listeners"] if l["name"] == "web"][0]
            lb = [l for l in before["listeners"] if l["name"] == "web"][0]
            W.check(lb["connections_accepted"] <= acc <=
                    lw["connections_accepted"], "accepted %d" % acc)
            W.log("ok   the page matches weftctl stats: generation %d, "
                  "workers %r, %d requests" % (attr(dom, "generation"),
                                              sorted(pids), req))

            victim = sorted(want)[0]
            os.kill(victim, signal.SIGKILL)
            W.wait_for(lambda: any(e["kind"] == "crash" for e in
                                   W.ctl_json(sock, "stats")["events"])
                       or None, DEADLINE, "the crash to be recorded")
            W.wait_for(lambda: load.done > 200 or None, DEADLINE, "load")
            dom2 = browser(binary, base + "/", "--dump-dom")
            W.check(attr(dom2, "requests") > req,
                    "the requests did not grow under load: %d then %d"
                    % (req, attr(dom2, "requests")))
            W.check(re.search(r'data-field="kind">crash<', dom2) and
                    ("(pid %d) killed by signal 9" % victim) in dom2,
                    "the crash is not among the page's events")
            W.log("ok   under load the page's requests grew (%d -> %d) and "
                  "it shows the crash of pid %d" % (req,
                                                    attr(dom2, "requests"),
                                                    victim))
            shot = os.path.join(os.getcwd(), "stats_page.png")
            browser(binary, base + "/", "--screenshot=" + shot,
                    "--window-size=1200,900", "--hide-scrollbars")
            with open(shot, "rb") as f:
                W.check(f.read(8) == b"\x89PNG\r\n\x1a\n",
                        "the screenshot is not a PNG")
            W.log("ok   screenshot: %s" % shot)
        finally:
            load.end()


if __name__ == "__main__":
    W.run(main)
