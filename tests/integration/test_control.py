"""The control socket, weftctl and the admin /metrics listener.

One weftd (2 workers, an echo listener, an admin listener, control socket
mode 0666 in its temp dir) serves scenarios a to h in turn:

a. exact counts: after exactly N echo connections of K bytes each (and
   once stats shows them all closed), `weftctl --json stats` has totals
   and listener "echo" with N accepted and N*K bytes in and out, listener
   "outgoing" at zero, every STATS_FIELDS name then an empty "latency",
   and the workers summing to the totals; the tables of `stats` and
   `workers` show the same.
b. a worker killed with SIGKILL under traffic (a thread doing echo round
   trips): across many stats polls before and after, no counter of the
   totals or of a listener ever decreases, and slot 0 shows the new pid
   (`workers`, as JSON and as a table). `weftctl -n 2 top` runs meanwhile
   and shows two refreshes with rates.
c. `weftctl metrics` passes `promtool check metrics`, and so does GET
   /metrics on the admin listener, with the same series; the counters
   agree with stats; other paths get 404. (echo answers no request: no
   weft_request_duration_seconds samples, the family alone.)
d. a peer of another uid (nobody) is refused ("permission denied", weftctl
   exit 1); root only, skipped otherwise.
e. bad clients all at once (binary garbage, a 5000-byte line, an empty
   line, an unknown command, silent clients) get one-line JSON errors, the
   silent ones "timeout" after 5 s; meanwhile ping answers and a worker
   killed with SIGKILL is replaced.
f. weftctl's own failures: a missing socket (exit 2, the path in the
   message), a stale socket file, a reply that is not JSON, no reply
   (client timeout), usage errors; reload starts a new generation (the
   reload test covers it in depth).
h. a second weftd on the same control path exits 1 with a clear error
   while the first keeps serving.
g. `weftctl stop`: exit 0, then every process gone, the socket removed.
Then a weftd killed with SIGKILL leaves its socket file behind: weftctl
says it cannot connect (exit 2), and the next weftd replaces the file;
that one has `group` set, so nobody, in that group, is let in.

Synchronisation: weftctl ping / stats polled with deadlines, /proc for
processes; threads for traffic and for the bad clients, joined with
timeouts. Needs promtool (Debian package prometheus): fails without it.
"""

import grp
import json
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True    # no __pycache__ in the source tree
import weftlib as W  # noqa: E402

N_CONN = 50
K_BYTES = 1000
CTL_TIMEOUT = 5.0           # weftd answers a silent client after this
SILENT_MAX = 10.0           # ... and we accept up to this (ASan, load)
VERSION = "0.1.0"


# --------------------------------------------------------------------------
# The stats fields, from the source of truth

stats_fields = W.stats_fields


FIELDS = stats_fields()
COUNTERS = [n for n, kind in FIELDS if kind == "COUNTER"]


# --------------------------------------------------------------------------
# Running weftctl

def as_nobody():
    """argv prefix that runs a command as nobody, or None."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        return None
    group = nobody_group()
    if shutil.which("setpriv") and group:
        return ["setpriv", "--reuid=nobody", "--regid=" + group,
                "--clear-groups"]
    if shutil.which("runuser"):
        return ["runuser", "-u", "nobody", "--"]
    return None


def nobody_group():
    for name in ("nogroup", "nobody"):
        try:
            grp.getgrnam(name)
            return name
        except KeyError:
            pass
    return None


weftctl = W.weftctl


def ctl_ok(sock, *args, **kw):
    """weftctl must exit 0; returns stdout."""
    rc, out, err = weftctl(sock, *args, **kw)
    W.check(rc == 0, "weftctl %s: exit %s, stdout %r, stderr %r"
            % (" ".join(args), rc, out[:500], err))
    return out


def ctl_json(sock, command):
    """weftctl --json COMMAND: the parsed reply, which must say ok."""
    out = ctl_ok(sock, "--json", command)
    W.check(out.endswith("\n") and out.count("\n") == 1,
            "%s: reply is not one line ending in a newline: %r"
            % (command, out[:300]))
    reply = json.loads(out)
    W.check(reply.get("ok") is True, "%s: %r" % (command, reply))
    return reply


def by_name(stats):
    return {l["name"]: l for l in stats["listeners"]}


def slot_pid(stats, slot):
    pids = [w["pid"] for w in stats["workers"] if w["slot"] == slot]
    return pids[0] if len(pids) == 1 else None


# --------------------------------------------------------------------------
# Raw control clients

def read_all(s, deadline):
    """Read until EOF (or a reset after data, as a UNIX socket reports a
    peer that closed with our bytes unread); returns the bytes."""
    got = b""
    while True:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            if got:
                return got
            raise
        except socket.timeout:
            raise W.TestFailure("no end of reply; got %r" % got[:200])
        if not chunk:
            return got
        got += chunk


def raw_client(path, data, timeout, result):
    """Connect, send data (None: nothing), read the reply until EOF.
    Fills result with reply, elapsed seconds or an error."""
    t0 = time.monotonic()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.connect(path)
        t0 = time.monotonic()
        if data:
            try:
                s.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass            # answered and closed before reading it all
        result["reply"] = read_all(s, t0 + timeout)
        result["elapsed"] = time.monotonic() - t0
    except Exception as e:      # noqa: reported by the caller
        result["error"] = "%s: %s" % (type(e).__name__, e)
    finally:
        s.close()


def json_error(name, result, want):
    """result must be one JSON line {"ok": false, "error": ...want...}."""
    W.check("error" not in result, "%s: %s" % (name, result.get("error")))
    reply = result["reply"]
    W.check(reply.endswith(b"\n") and reply.count(b"\n") == 1,
            "%s: reply is not one line ending in a newline: %r"
            % (name, reply[:200]))
    obj = json.loads(reply)
    W.check(obj.get("ok") is False and want in obj.get("error", ""),
            "%s: expected an error containing %r, got %r" % (name, want, obj))
    W.log("ok   %s: %r after %.2f s" % (name, obj["error"],
                                        result["elapsed"]))


# --------------------------------------------------------------------------
# Prometheus text

SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")


def prom_samples(text):
    """{(name, labels): float} of the sample lines."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        W.check(m is not None, "metrics: unparsable line %r" % line)
        out[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return out


def promtool_check(text, what, tmp):
    promtool = shutil.which("promtool")
    W.check(promtool is not None, "promtool not found: install the Debian "
            "package prometheus (contrib/test.sh does) to check the metrics "
            "format")
    path = os.path.join(tmp, "%s.prom" % what)
    with open(path, "w") as f:
        f.write(text)
    with open(path, "rb") as f:
        p = subprocess.run([promtool, "check", "metrics"], stdin=f,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60)
    W.check(p.returncode == 0, "promtool check metrics on %s: exit %d:\n%s"
            % (what, p.returncode, p.stdout.decode("utf-8", "replace")))
    W.log("ok   %s: promtool check metrics passes (%d lines)"
          % (what, text.count("\n")))


def http_get(port, path):
    """(status, headers text, body) of GET path over HTTP/1.0."""
    s = socket.create_connection((W.LOOPBACK, port), timeout=W.IO_TIMEOUT)
    try:
        s.sendall(("GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n"
                   % path).encode())
        data = read_all(s, time.monotonic() + W.IO_TIMEOUT)
    finally:
        s.close()
    head, sep, body = data.partition(b"\r\n\r\n")
    W.check(sep, "GET %s: no end of headers in %r" % (path, data[:300]))
    status = head.split(b"\r\n")[0].decode()
    m = re.match(r"HTTP/1\.[01] (\d{3}) ", status)
    W.check(m is not None, "GET %s: bad status line %r" % (path, status))
    return int(m.group(1)), head.decode(), body.decode()


# --------------------------------------------------------------------------
# Scenarios

def config(port, admin_port=None, control=' mode = "0666"; '):
    admin = ('admin = { listen = "127.0.0.1:%d"; };\n' % admin_port
             if admin_port else "")
    return ("workers = 2;\ncpu_affinity = false;\n"
            "control = {%s};\n%s"
            "listeners = (\n"
            '  { name = "echo"; listen = "127.0.0.1:%d"; protocol = "echo"; }'
            "\n);\n" % (control, admin, port))


def wait_ping(d, sock):
    def pred():
        W.check(d.running(), "weftd exited early with code %s" % d.poll())
        return weftctl(sock, "ping")[0] == 0
    W.wait_for(pred, W.STARTUP_TIMEOUT, "weftctl ping to answer")


def wait_closed(sock, n):
    """Wait until stats shows n connections closed; returns the stats."""
    last = {}

    def pred():
        last.update(ctl_json(sock, "stats"))
        return last["totals"]["connections_closed"] >= n
    try:
        W.wait_for(pred, W.STARTUP_TIMEOUT, "%d connections closed" % n)
    except W.TestFailure as e:
        raise W.TestFailure("%s; last totals %r" % (e, last.get("totals")))
    return last


def wait_quiet(sock):
    """Wait until no connection is open and two polls in a row agree;
    returns the stats. (accepted == closed is no test here: connections
    open in a worker killed with SIGKILL are never counted closed.)"""
    last = [None]

    def pred():
        st = ctl_json(sock, "stats")
        same = last[0] is not None and counters(st) == counters(last[0])
        last[0] = st
        return same and st["totals"]["connections_active"] == 0
    W.wait_for(pred, W.STARTUP_TIMEOUT, "no connection open, counts still")
    return last[0]


def exact_counts(d, sock, port):
    for i in range(N_CONN):
        W.echo_roundtrip(port, bytes([i % 256]) * K_BYTES)
    st = wait_closed(sock, N_CONN)
    names = [n for n, _ in FIELDS]
    W.check(list(st["totals"]) == names + ["latency"], "totals fields %r, "
            "expected the STATS_FIELDS names %r, then latency"
            % (list(st["totals"]), names))
    # echo answers no request: empty histograms, every member there.
    empty = {"count": 0, "sum_us": 0, "p50_us": 0, "p90_us": 0,
             "p99_us": 0, "max_us": 0, "buckets": []}
    for scope in [st["totals"]] + st["listeners"]:
        W.check(scope["latency"] == empty, "latency %r, expected %r"
                % (scope["latency"], empty))
    W.check(all("latency" not in w for w in st["workers"]),
            "workers have a latency object: %r" % st["workers"])
    want = {"connections_accepted": N_CONN, "connections_closed": N_CONN,
            "connections_active": 0, "bytes_in": N_CONN * K_BYTES,
            "bytes_out": N_CONN * K_BYTES}
    ls = by_name(st)
    W.check(set(ls) == {"echo", "outgoing"}, "listeners %r" % list(ls))
    for scope, counts in (("totals", st["totals"]), ("echo", ls["echo"])):
        got = {k: counts[k] for k in want}
        W.check(got == want, "%s: %r, expected %r" % (scope, got, want))
    W.check(all(ls["outgoing"][n] == 0 for n in names),
            "outgoing: %r, expected zeros" % ls["outgoing"])
    W.check(st["version"] == VERSION and st["pid"] == d.pid and
            st["generation"] == 1 and st["workers_configured"] == 2,
            "stats head: %r" % {k: v for k, v in st.items()
                                if not isinstance(v, (dict, list))})
    W.check(sorted(w["slot"] for w in st["workers"]) == [0, 1] and
            {w["pid"] for w in st["workers"]} == set(d.workers()),
            "stats workers %r, worker processes %r"
            % (st["workers"], d.workers()))
    for n in names:
        total = sum(w[n] for w in st["workers"])
        W.check(total == st["totals"][n], "%s: workers sum to %d, totals "
                "say %d" % (n, total, st["totals"][n]))
    W.log("ok   a: %d connections x %d bytes counted exactly (totals, "
          "listener, sum of workers %r)" % (N_CONN, K_BYTES,
                                            [w["connections_accepted"]
                                             for w in st["workers"]]))

    table = ctl_ok(sock, "stats")
    row = re.search(r"^connections_accepted\s+(\d+)\s+(\d+)\s+(\d+)\s*$",
                    table, re.M)
    W.check(row is not None and row.groups() == (str(N_CONN), str(N_CONN),
                                                   "0"),
            "stats table: no connections_accepted row %d %d 0:\n%s"
            % (N_CONN, N_CONN, table))
    for pid in d.workers():
        W.check(re.search(r"^\s*[01]\s+%d\s+1\s+running\s" % pid, table,
                          re.M),
                "stats table: no running worker %d:\n%s" % (pid, table))
    W.check(("pid %d" % d.pid) in table, "stats table: no pid %d:\n%s"
            % (d.pid, table))
    W.check(re.search(r"^LISTENER\s+REQUESTS\s+2XX\s+3XX\s+4XX\s+5XX\s+"
                      r"P50\s+P99\s*$", table, re.M) and
            re.search(r"^echo\s+0\s+0\s+0\s+0\s+0\s+-\s+-\s*$", table,
                      re.M) and
            not re.search(r"^latency\s", table, re.M),
            "stats table: no requests table with an echo row of zeros:\n%s"
            % table)
    W.log("ok   a: the stats table shows the same:\n%s" % table)


class Traffic:
    """A thread doing echo round trips until stopped."""

    def __init__(self, port):
        self.port = port
        self.stop = threading.Event()
        self.ok = 0
        self.errors = {}
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        data = b"t" * K_BYTES
        while not self.stop.is_set():
            try:
                W.echo_roundtrip(self.port, data, timeout=5.0)
                self.ok += 1
            except W.EchoError as e:
                self.errors[e.kind] = self.errors.get(e.kind, 0) + 1

    def finish(self):
        self.stop.set()
        self.thread.join(15)
        W.check(not self.thread.is_alive(), "traffic thread did not stop")
        return self.ok, self.errors


def counters(st):
    """{(scope, name): value} of every counter, totals and listeners."""
    out = {("totals", n): st["totals"][n] for n in COUNTERS}
    for l in st["listeners"]:
        out.update({(l["name"], n): l[n] for n in COUNTERS})
    return out


def kill_under_traffic(d, sock, port, tmp):
    top = subprocess.Popen([W.weftctl_path(), "-s", sock, "-n", "2", "top"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
    traffic = Traffic(port)
    high = {}
    polls = [0]

    def poll():
        st = ctl_json(sock, "stats")
        for key, v in counters(st).items():
            W.check(v >= high.get(key, 0), "%s %s went back from %d to %d"
                    % (key[0], key[1], high.get(key, 0), v))
            high[key] = v
        polls[0] += 1
        return st

    W.wait_for(lambda: poll()["totals"]["connections_accepted"] >=
               N_CONN + 20, W.STARTUP_TIMEOUT, "traffic to be counted")
    for _ in range(5):
        before = poll()
    victim = slot_pid(before, 0)
    W.check(victim in d.workers(), "slot 0 pid %r is not a worker of %r"
            % (victim, d.workers()))
    os.kill(victim, signal.SIGKILL)
    W.log("killed worker 0 (pid %d) under traffic, %d connections so far"
          % (victim, before["totals"]["connections_accepted"]))

    def replaced():
        st = poll()
        pid = slot_pid(st, 0)
        w0 = [w for w in st["workers"] if w["slot"] == 0]
        return st if pid not in (None, victim) and \
            w0[0]["state"] == "running" else None
    st = W.wait_for(replaced, W.STARTUP_TIMEOUT, "slot 0 to get a new pid")
    new = slot_pid(st, 0)
    at_replacement = st["totals"]["connections_accepted"]
    W.wait_for(lambda: poll()["totals"]["connections_accepted"] >=
               at_replacement + 20, W.STARTUP_TIMEOUT,
               "traffic after the replacement")
    # Keep polling under traffic until top is done (about 2 s).
    W.wait_for(lambda: poll() and top.poll() is not None,
               W.STARTUP_TIMEOUT, "weftctl -n 2 top to exit")
    ok, errors = traffic.finish()
    W.log("ok   b: %d stats polls, no counter went back; slot 0: pid %d "
          "replaced by %d; traffic: %d round trips, errors %r"
          % (polls[0], victim, new, ok, errors))

    ws = ctl_json(sock, "workers")
    W.check(slot_pid(ws, 0) == new and victim not in
            [w["pid"] for w in ws["workers"]] and ws["generation"] == 1,
            "workers: %r, expected pid %d in slot 0" % (ws, new))
    W.check(new in d.workers(), "pid %d is not a worker process of weftd: "
            "%r" % (new, d.workers()))
    table = ctl_ok(sock, "workers")
    W.check(re.search(r"^\s*0\s+%d\s+1\s+running\s" % new, table, re.M) and
            str(victim) not in table,
            "workers table: expected slot 0 with pid %d:\n%s" % (new, table))
    W.log("ok   b: workers shows pid %d in slot 0:\n%s" % (new, table))

    try:
        out, err = top.communicate(timeout=W.STARTUP_TIMEOUT)
    except subprocess.TimeoutExpired:
        top.kill()
        top.wait()
        raise W.TestFailure("weftctl -n 2 top did not exit")
    out = out.decode("utf-8", "replace")
    heads = re.findall(r"^weftd %s\s+pid %d\s" % (VERSION, d.pid), out, re.M)
    W.check(top.returncode == 0 and len(heads) == 2 and "\033" not in out,
            "weftctl -n 2 top: exit %s, %d refreshes (want 2, no escape "
            "codes on a pipe):\n%s\nstderr: %s"
            % (top.returncode, len(heads), out, err.decode()))
    W.check(re.search(r"^\s*all\s+\d+\s+\d+\s+\d+\s+\S+\s+\S+\s*$", out,
                      re.M),
            "weftctl top: no 'all' row with rates:\n%s" % out)
    W.log("ok   b: weftctl -n 2 top meanwhile:\n%s" % out)


def metrics(d, sock, admin_port, tmp):
    st = wait_quiet(sock)
    text = ctl_ok(sock, "metrics")
    promtool_check(text, "weftctl-metrics", tmp)
    status, head, body = http_get(admin_port, "/metrics")
    W.check(status == 200 and "text/plain" in head,
            "GET /metrics: %d, headers %r" % (status, head))
    promtool_check(body, "http-metrics", tmp)
    a, b = prom_samples(text), prom_samples(body)
    W.check(set(a) == set(b), "weftctl metrics and GET /metrics differ in "
            "series: only in weftctl %r, only in HTTP %r"
            % (sorted(set(a) - set(b))[:10], sorted(set(b) - set(a))[:10]))
    workers = d.workers()
    must = [("weft_generation", ""), ("weft_workers", ""),
            ("weft_uptime_seconds", ""),
            ("weft_build_info", '{version="%s"}' % VERSION)]
    for slot in (0, 1):
        pid = slot_pid(st, slot)
        W.check(pid in workers, "slot %d pid %r not a worker" % (slot, pid))
        lab = '{worker="%d",pid="%d"}' % (slot, pid)
        must += [("weft_worker_heartbeat_age_seconds", lab),
                 ("weft_worker_stalled", lab)]
    for key in must:
        W.check(key in a, "metrics: no series %s%s" % key)
    W.check("# TYPE weft_request_duration_seconds histogram\n" in text and
            not any(m.startswith("weft_request_duration_seconds")
                    for m, _ in a),
            "metrics: the latency histogram of echo should be its TYPE "
            "line alone")
    W.check(a[("weft_workers", "")] == 2 and
            a[("weft_generation", "")] == 1,
            "weft_workers / weft_generation: %r / %r"
            % (a[("weft_workers", "")], a[("weft_generation", "")]))
    # Counters per (listener, worker slot): their sums are the totals.
    ls = by_name(st)
    for name, kind in FIELDS:
        metric = "weft_%s%s" % (name, "_total" if kind == "COUNTER" else "")
        for lname in ("echo", "outgoing"):
            got = sum(v for (m, lab), v in a.items() if m == metric and
                      ('listener="%s"' % lname) in lab)
            W.check(got == ls[lname][name], "%s{listener=%s} sums to %s, "
                    "stats says %s" % (metric, lname, got, ls[lname][name]))
    status, _, _ = http_get(admin_port, "/other")
    W.check(status == 404, "GET /other: status %d, expected 404" % status)
    W.log("ok   c: %d series, the same over HTTP; counters agree with "
          "stats; /other is 404" % len(a))


def other_uid(sock, tmp):
    prefix = as_nobody()
    if prefix is None:
        W.log("skip d: not root, or no nobody user, setpriv or runuser")
        return
    os.chmod(tmp, 0o755)        # reach the socket: SO_PEERCRED decides
    rc, out, err = weftctl(sock, "ping", prefix=prefix)
    W.check(rc == 1 and "permission denied" in err,
            "weftctl ping as nobody: exit %s (want 1), stdout %r, stderr %r"
            % (rc, out, err))
    rc, out, err = weftctl(sock, "--json", "stats", prefix=prefix)
    W.check(rc == 1 and json.loads(out) == {"ok": False,
                                            "error": "permission denied"},
            "weftctl --json stats as nobody: exit %s, stdout %r" % (rc, out))
    W.log("ok   d: nobody is refused: %s" % err.strip())


def bad_clients(d, sock):
    cases = [
        ("garbage", b"\x00\xff\xfe\x80binary\x01\x02\x7f\n", "unknown"),
        ("long line", b"p" * 5000 + b"\n", "too long"),
        ("empty line", b"\n", "empty"),
        ("unknown", b"frobnicate\n", "unknown"),
        ("silent 1", None, "timeout"),
        ("silent 2", None, "timeout"),
        ("silent 3", None, "timeout"),
        ("half a line", b"sta", "timeout"),
    ]
    results = [{} for _ in cases]
    threads = [threading.Thread(target=raw_client, daemon=True,
                                args=(sock, data, SILENT_MAX + 5, res))
               for (_, data, _), res in zip(cases, results)]
    t0 = time.monotonic()
    for t in threads:
        t.start()

    # Meanwhile: ping answers, a killed worker is replaced.
    out = ctl_ok(sock, "ping")
    W.check(out.startswith("weftd answers on %s" % sock), "ping: %r" % out)
    before = ctl_json(sock, "workers")
    victim = slot_pid(before, 1)
    os.kill(victim, signal.SIGKILL)

    def replaced():
        ws = ctl_json(sock, "workers")
        pid = slot_pid(ws, 1)
        return pid if pid not in (None, victim) and pid in d.workers() \
            else None
    new = W.wait_for(replaced, W.STARTUP_TIMEOUT, "slot 1 replaced")
    waited = time.monotonic() - t0
    W.log("ok   e: while %d bad clients wait: ping answers, worker 1 "
          "(pid %d) replaced by %d after %.2f s"
          % (len(cases), victim, new, waited))
    W.check(waited < CTL_TIMEOUT - 0.5, "the kill and replacement took "
            "%.1f s: too slow to overlap the silent clients" % waited)

    for t in threads:
        t.join(SILENT_MAX + 10)
        W.check(not t.is_alive(), "a bad client thread is stuck")
    for (name, data, want), res in zip(cases, results):
        json_error(name, res, want)
        if want == "timeout":
            W.check(CTL_TIMEOUT - 0.5 <= res["elapsed"] <= SILENT_MAX,
                    "%s: closed after %.2f s, expected %.0f to %.0f s"
                    % (name, res["elapsed"], CTL_TIMEOUT, SILENT_MAX))
        else:
            W.check(res["elapsed"] < CTL_TIMEOUT - 0.5,
                    "%s: answered after %.2f s, not at once"
                    % (name, res["elapsed"]))
    ctl_ok(sock, "ping")
    W.check(len(d.workers()) == 2, "workers after the bad clients: %r"
            % d.workers())
    W.log("ok   e: weftd still serves")


class FakeServer:
    """A UNIX socket that answers each connection with `reply` (None:
    reads the line and says nothing until closed)."""

    def __init__(self, path, reply):
        self.path, self.reply = path, reply
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(4)
        self.sock.settimeout(W.IO_TIMEOUT + 10)
        self.held = []
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        try:
            c, _ = self.sock.accept()
        except OSError:
            return
        c.settimeout(W.IO_TIMEOUT)
        try:
            c.recv(100)
            if self.reply is None:
                self.held.append(c)
                return
            c.sendall(self.reply)
        except OSError:
            pass
        c.close()

    def close(self):
        self.thread.join(W.IO_TIMEOUT + 10)
        for c in self.held:
            c.close()
        self.sock.close()


def client_failures(sock, tmp):
    rc, out, err = weftctl("/nonexistent/x.sock", "ping")
    W.check(rc == 2 and "/nonexistent/x.sock" in err and not out,
            "-s /nonexistent/x.sock ping: exit %s (want 2), stdout %r, "
            "stderr %r" % (rc, out, err))
    W.log("ok   f: %s" % err.strip())

    fake = FakeServer(os.path.join(tmp, "fake.sock"), b"hello there\n")
    rc, out, err = weftctl(fake.path, "stats")
    fake.close()
    W.check(rc == 2 and "not understood" in err,
            "a reply that is not JSON: exit %s (want 2), stderr %r"
            % (rc, err))
    os.unlink(fake.path)
    fake = FakeServer(os.path.join(tmp, "fake.sock"), b'{"ok": 1}\n')
    rc, out, err = weftctl(fake.path, "ping")
    fake.close()
    W.check(rc == 2 and "not understood" in err,
            'a reply with "ok": 1: exit %s (want 2), stderr %r' % (rc, err))
    os.unlink(fake.path)
    fake = FakeServer(os.path.join(tmp, "fake.sock"), None)
    t0 = time.monotonic()
    rc, out, err = weftctl(fake.path, "-t", "1", "ping")
    took = time.monotonic() - t0
    fake.close()
    W.check(rc == 2 and "timed out" in err and took < 1 + W.IO_TIMEOUT,
            "a server that never answers, -t 1: exit %s (want 2) after "
            "%.1f s, stderr %r" % (rc, took, err))
    W.log("ok   f: replies not understood and no reply (%.1f s with -t 1) "
          "exit 2" % took)

    for args in (["bogus"], [], ["ping", "stats"], ["-n", "2", "ping"],
                 ["-t", "zero", "ping"], ["--frobnicate", "ping"]):
        rc, out, err = weftctl(sock, *args)
        W.check(rc == 2 and err, "weftctl %s: exit %s (want 2), stderr %r"
                % (" ".join(args), rc, err))
    help_text = ctl_ok(sock, "-h")
    for name in ("ping", "version", "stats", "workers", "top", "metrics",
                 "reload", "stop", "help"):
        W.check(re.search(r"^\s+%s\s+\S" % name, help_text, re.M),
                "weftctl -h does not list %s:\n%s" % (name, help_text))
    W.check(ctl_ok(sock, "-V").strip() == "weftctl %s" % VERSION,
            "weftctl -V")
    W.check(VERSION in ctl_ok(sock, "version"), "weftctl version")
    W.check(ctl_json(sock, "version")["version"] == VERSION,
            "version reply")
    served = ctl_json(sock, "help")["commands"]
    W.check({"ping", "stats", "workers", "metrics", "stop"} <=
            {c["name"] for c in served}, "help reply: %r" % served)
    W.check("stats" in ctl_ok(sock, "help"), "weftctl help")
    gen = ctl_json(sock, "workers")["generation"]
    rc, out, err = weftctl(sock, "reload")
    W.check(rc == 0, "weftctl reload: exit %s (want 0), stderr %r"
            % (rc, err))
    W.check(ctl_json(sock, "workers")["generation"] == gen + 1,
            "reload did not start a new generation")
    W.log("ok   f: usage errors exit 2; -h, -V, version, help; reload "
          "starts generation %d" % (gen + 1))


def second_weftd(d, sock, port, tmp):
    other = W.free_port()
    path = os.path.join(tmp, "second.conf")
    with open(path, "w") as f:
        f.write(config(other))
    rc, out, err = W.run_weftd(["-c", path], tmp, timeout=W.STARTUP_TIMEOUT,
                               name="second")
    W.check(rc == 1 and "weft.sock" in err and
            re.search(r"another weftd|already|in use", err),
            "a second weftd on the same control socket: exit %s (want 1), "
            "stderr %r" % (rc, err))
    ctl_ok(sock, "ping")
    W.echo_roundtrip(port, b"still here")
    W.check(d.running() and len(d.workers()) == 2, "the first weftd "
            "suffered from the second: running %s, workers %r"
            % (d.running(), d.workers()))
    W.log("ok   h: the second weftd exits 1 (%s); the first serves"
          % err.strip().splitlines()[-1])


def stop(d, sock):
    pids = set(d.workers()) | {d.pid}
    out = ctl_ok(sock, "stop")
    W.check("stopping" in out, "weftctl stop: %r" % out)

    def gone():
        d.proc.poll()
        return d.proc.returncode is not None and \
            not any(W.pid_alive(p) for p in pids)
    W.wait_for(gone, W.EXIT_TIMEOUT, "every weftd process to exit")
    W.check(d.proc.returncode == 0, "exit code %s after weftctl stop"
            % d.proc.returncode)
    W.check(not os.path.exists(sock), "%s left behind" % sock)
    W.log("ok   g: weftctl stop: all %d processes gone, exit 0, socket "
          "removed" % len(pids))


def stale_socket():
    tmp = W.make_tmpdir()
    sock = os.path.join(tmp, "weft.sock")
    with W.Weftd(config(W.free_port()), tmpdir=tmp, name="killed") as d:
        wait_ping(d, sock)
        pids = set(d.workers()) | {d.pid}
        os.kill(d.pid, signal.SIGKILL)
        W.wait_for(lambda: not any(W.pid_alive(p) for p in pids),
                   W.EXIT_TIMEOUT, "the killed weftd's processes to go")
        d.proc.wait(W.EXIT_TIMEOUT)
    W.check(stat.S_ISSOCK(os.lstat(sock).st_mode), "no stale socket left")
    rc, out, err = weftctl(sock, "ping")
    W.check(rc == 2 and sock in err, "ping on a stale socket: exit %s "
            "(want 2), stderr %r" % (rc, err))
    group = nobody_group()
    control = ' mode = "0660"; group = "%s"; ' % group if group else ""
    with W.Weftd(config(W.free_port(), control=control), tmpdir=tmp,
                 name="next") as d:
        wait_ping(d, sock)
        W.log("ok   h: a stale socket is replaced by the next weftd")
        prefix = as_nobody()
        if prefix is not None and group is not None:
            os.chmod(tmp, 0o755)
            out = ctl_ok(sock, "ping", prefix=prefix)
            W.log("ok   d: nobody, in group %s, is let in: %s"
                  % (group, out.strip()))
        rc, _ = d.stop()
        W.check(rc == 0, "exit code %s after SIGTERM" % rc)


def main():
    W.weftctl_path()
    tmp = W.make_tmpdir()
    sock = os.path.join(tmp, "weft.sock")   # the default, in weftd's cwd
    port, admin_port = W.free_port(), W.free_port()
    with W.Weftd(config(port, admin_port), tmpdir=tmp, name="main") as d:
        wait_ping(d, sock)
        d.wait_workers(2)
        exact_counts(d, sock, port)
        kill_under_traffic(d, sock, port, tmp)
        metrics(d, sock, admin_port, tmp)
        other_uid(sock, tmp)
        bad_clients(d, sock)
        client_failures(sock, tmp)
        second_weftd(d, sock, port, tmp)
        stop(d, sock)
    stale_socket()


if __name__ == "__main__":
    W.run(main, timeout=120)
