"""Hitless reload: `weftctl reload` (and SIGHUP) under load.

One weftd: 2 workers, cpu_affinity off, an echo listener on a free loopback
port, shutdown_timeout = 60, the control socket weft.sock in its temp dir.

Load, all from this process:
  * churn: 8 threads, each looping connect / send 1..4096 random bytes /
    read them all back / check every byte / close, counting connections
    made, refused, reset, timed out, closed early, mismatched or otherwise
    failed; started per scenario and bounded in time and iterations;
  * long-lived: 20 connections opened, and served once, before the first
    reload (so they belong to generation-1 workers); each has a thread doing
    an echo round trip of 1..4096 random bytes every ~50 ms, paced by an
    Event wait with a timeout, until the client closes them;
  * a stats watcher: `weftctl --json stats` about every 100 ms from a thread
    (and at every check): no counter of the totals or of a listener may ever
    decrease (reloads fold retired workers into the totals).

Scenarios, in order, on the same weftd:
1. 20 `weftctl --json reload` in a row, config unchanged: each exits 0 with
   {"ok": true, "generation": N+1}; then `workers --json` reaches that
   generation with one running worker per slot, each a new pid, a child of
   the supervisor named weftd-w<slot>; older generations are draining.
   After each reload churn and every long-lived connection make progress.
   Then one more reload by SIGHUP.  The gen-1 workers holding the long-lived
   connections are still there, draining (and accepted nothing since the
   second reload, while churn went on), every intermediate generation has
   exited, and the port still has one LISTEN socket per slot.  The reload
   call times (min/median/max) are reported.
2. Broken configs: a syntax error at a known line, then two errors at once
   (an unknown key, a value out of range), then a different worker count:
   each reload exits 1, stderr names CONFIG:LINE: of each error (or
   "workers"), the generation and the running pids are unchanged; then the
   good config is restored and reloads (exit 0).
3. A second echo listener on a new free port, with idle_timeout = 700 ms:
   after the reload the new port echoes at once, and an idle connection to
   it is closed by the server after about 0.7 s (the new setting is in
   force); the old port kept serving churn.  Removing that listener again is
   refused (exit 1, stderr says "listener", generation and workers
   unchanged).
4. The long-lived connections are closed by the client: the gen-1 workers
   exit within 15 s, and `workers` shows only the current generation.
5. shutdown_timeout = 1: one reload starts workers with it; then idle
   connections are opened on them and one more reload is done: each old
   worker is gone at most 1 s + DRAIN_SLACK after the reload returned, and
   the idle connections are closed by the server no sooner than ~1 s after
   the reload began.
Every scenario: churn has 0 failures; stats never went backwards. At the
end, with no client connection open, stats shows 0 active connections,
accepted == closed, and at least as many accepted as the clients made; then
SIGTERM stops weftd with exit code 0.

Synchronisation: weftctl replies (reload is synchronous; workers --json
polled for the generation), /proc for processes, counters of the load
threads; all polled with wait_for deadlines.  Sleeping only paces the
churn loops, the long-lived round trips and the stats watcher (Event.wait
with a timeout).
"""

import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True    # no __pycache__ in the source tree
import weftlib as W  # noqa: E402

SLOTS = 2
N_CHURN = 8
N_LONG = 20
N_RELOADS = 20
LONG_PERIOD = 0.05          # seconds between long-lived round trips
STATS_PERIOD = 0.1          # seconds between stats polls of the watcher
MAX_PAYLOAD = 4096
CHURN_MAX_SECONDS = 40.0    # bound of one scenario's churn
LONG_MAX_SECONDS = 150.0    # bound of the long-lived threads
SHUTDOWN_LONG = 60          # keeps the long-lived connections open
SHUTDOWN_SHORT = 1
DRAIN_SLACK = 2.0           # allowed beyond shutdown_timeout (ASan, load)
OLD_EXIT_TIMEOUT = 15.0     # scenario 4: draining workers gone
IDLE2_MS = 700              # idle_timeout of the listener added by 3
RELOAD_TIMEOUT = 60         # weftctl -t for reload (a synchronous answer)
CTL_TIMEOUT = 30            # weftctl -t for the other commands

_T0 = time.monotonic()


def churn_pause():
    """Pause between two connections of one churn thread.  Each closed
    connection leaves a client port in TIME_WAIT for 60 s; with
    net.ipv4.tcp_tw_reuse (1, or 2 for loopback, the default) such a port
    is reused after 1 s, without it not at all: stay far below the ~28000
    ephemeral ports for the whole run."""
    try:
        with open("/proc/sys/net/ipv4/tcp_tw_reuse") as f:
            reuse = int(f.read().strip() or 0)
    except (OSError, ValueError):
        reuse = 0
    return 0.005 if reuse else 0.025


CHURN_PAUSE = churn_pause()
CHURN_MAX_ITER = int(CHURN_MAX_SECONDS / CHURN_PAUSE)   # per thread, scenario


def now():
    return time.monotonic() - _T0


# --------------------------------------------------------------------------
# weftctl

def weftctl(sock, *args, timeout=CTL_TIMEOUT):
    """Run weftctl -s sock -t timeout args...; returns
    (rc, stdout, stderr, seconds)."""
    argv = [W.weftctl_path(), "-s", sock, "-t", str(timeout)] + list(args)
    t0 = time.monotonic()
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout + 15)
    except subprocess.TimeoutExpired:
        raise W.TestFailure("%s did not exit within %d s"
                            % (" ".join(argv), timeout + 15))
    took = time.monotonic() - t0
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    san = [l for l in err.splitlines()
           if any(pat in l for pat in W.SANITIZER_PATTERNS)]
    W.check(not san, "sanitizer report from weftctl %s:\n%s"
            % (" ".join(args), err))
    return p.returncode, out, err, took


def ctl_json(sock, command):
    """`weftctl --json COMMAND`: exit 0 and a reply with "ok": true."""
    rc, out, err, _ = weftctl(sock, "--json", command)
    W.check(rc == 0, "weftctl --json %s: exit %s, stdout %r, stderr %r"
            % (command, rc, out[:300], err[:300]))
    try:
        reply = json.loads(out)
    except ValueError as e:
        raise W.TestFailure("weftctl --json %s: not JSON (%s): %r"
                            % (command, e, out[:300]))
    W.check(reply.get("ok") is True, "weftctl --json %s: %r"
            % (command, reply))
    return reply


# --------------------------------------------------------------------------
# Configuration

def config_lines(port, port2=None, shutdown=SHUTDOWN_LONG, workers=SLOTS):
    """The config as a list of lines (line N of the file is lines[N-1])."""
    lines = ["# test_reload.py",
             "workers = %d;" % workers,
             "cpu_affinity = false;"]
    if shutdown is not None:
        lines.append("shutdown_timeout = %d;" % shutdown)
    lines.append("listeners = (")
    lines.append('  { name = "echo"; listen = "127.0.0.1:%d"; '
                 'protocol = "echo"; }%s' % (port, "," if port2 else ""))
    if port2:
        lines.append('  { name = "echo2"; listen = "127.0.0.1:%d"; '
                     'protocol = "echo"; idle_timeout = %d; }'
                     % (port2, IDLE2_MS))
    lines.append(");")
    return lines


def write_config(path, lines):
    """Replace the config file (rename, so weftd never reads half a file)."""
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def line_of(lines, needle):
    """1-based number of the only line containing needle."""
    hits = [i + 1 for i, l in enumerate(lines) if needle in l]
    W.check(len(hits) == 1, "config: %r on lines %r" % (needle, hits))
    return hits[0]


# --------------------------------------------------------------------------
# Stats: counters never go backwards

def counter_names():
    """Names of the COUNTER fields of STATS_FIELDS in shared/stats.h."""
    return [n for n, kind in W.stats_fields() if kind == "COUNTER"]


class StatsWatch:
    """Polls `weftctl --json stats` from a thread; every poll (the thread's
    and the test's) checks that no counter went back."""

    def __init__(self, sock):
        self.sock = sock
        self.names = counter_names()
        self.lock = threading.Lock()
        self.poll_lock = threading.Lock()
        self.high = {}
        self.polls = 0
        self.problems = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        deadline = time.monotonic() + LONG_MAX_SECONDS
        while time.monotonic() < deadline:
            try:
                self.poll()
            except Exception as e:          # noqa: reported by check()
                with self.lock:
                    self.problems.append("%.3f %s: %s"
                                         % (now(), type(e).__name__, e))
            if self.stop.wait(STATS_PERIOD):
                return

    def poll(self):
        # One poll at a time: the replies are then in the order of the
        # requests (two concurrent polls could be compared out of order).
        with self.poll_lock:
            return self._poll()

    def _poll(self):
        st = ctl_json(self.sock, "stats")
        scopes = [("totals", st["totals"])]
        scopes += [("listener " + l["name"], l) for l in st["listeners"]]
        with self.lock:
            self.polls += 1
            for scope, row in scopes:
                for n in self.names:
                    key = (scope, n)
                    old = self.high.get(key, 0)
                    if row[n] < old:
                        self.problems.append(
                            "%.3f %s %s went back from %d to %d "
                            "(generation %s)" % (now(), scope, n, old,
                                                 row[n], st["generation"]))
                    self.high[key] = max(old, row[n])
        return st

    def check(self):
        with self.lock:
            bad = list(self.problems)
        W.check(not bad, "stats: %d problem(s):\n  %s"
                % (len(bad), "\n  ".join(bad[:10])))

    def finish(self):
        self.stop.set()
        self.thread.join(CTL_TIMEOUT + 20)
        W.check(not self.thread.is_alive(), "stats watcher did not stop")
        self.check()


# --------------------------------------------------------------------------
# Load

KINDS = ("refused", "reset", "timeout", "eof", "mismatch", "other")


class Churn:
    """N_CHURN threads of short echo connections until finish() or the
    time/iteration bound."""

    def __init__(self, port, rng, name):
        self.port, self.name = port, name
        self.lock = threading.Lock()
        self.made = 0
        self.ok = 0
        self.errors = dict.fromkeys(KINDS, 0)
        self.samples = []
        self.stop = threading.Event()
        self.deadline = time.monotonic() + CHURN_MAX_SECONDS
        self.threads = [threading.Thread(target=self._run, daemon=True,
                                         args=(random.Random(
                                             rng.getrandbits(64)),))
                        for _ in range(N_CHURN)]
        for t in self.threads:
            t.start()

    def _fail(self, kind, msg):
        with self.lock:
            self.errors[kind] += 1
            if len(self.samples) < 10:
                self.samples.append("%.3f %s: %s" % (now(), kind, msg))

    def _one(self, rng):
        data = rng.randbytes(rng.randint(1, MAX_PAYLOAD))
        try:
            s = socket.create_connection((W.LOOPBACK, self.port),
                                         timeout=W.IO_TIMEOUT)
        except ConnectionRefusedError as e:
            return self._fail("refused", "connect: %s" % e)
        except ConnectionResetError as e:
            return self._fail("reset", "connect: %s" % e)
        except socket.timeout as e:
            return self._fail("timeout", "connect: %s" % e)
        except OSError as e:
            return self._fail("other", "connect: %r" % e)
        with self.lock:
            self.made += 1
        try:
            W.echo_exchange(s, data, W.IO_TIMEOUT)
        except W.EchoError as e:
            return self._fail(e.kind, "%d bytes: %s" % (len(data), e))
        except OSError as e:
            return self._fail("other", "%d bytes: %r" % (len(data), e))
        finally:
            s.close()
        with self.lock:
            self.ok += 1

    def _run(self, rng):
        for _ in range(CHURN_MAX_ITER):
            if time.monotonic() >= self.deadline:
                return
            self._one(rng)
            # Paces the loop (Event.wait returns True on finish()).
            if self.stop.wait(CHURN_PAUSE):
                return

    def failed(self):
        with self.lock:
            return sum(self.errors.values())

    def check(self):
        with self.lock:
            W.check(sum(self.errors.values()) == 0,
                    "churn (%s): %d connections made, failures %r; first:\n"
                    "  %s" % (self.name, self.made, self.errors,
                              "\n  ".join(self.samples)))

    def wait_progress(self, n, what):
        start = self.ok

        def pred():
            W.check(any(t.is_alive() for t in self.threads),
                    "churn (%s): threads ended (%.0f s or %d connections "
                    "each) before %s" % (self.name, CHURN_MAX_SECONDS,
                                         CHURN_MAX_ITER, what))
            return self.ok >= start + n or self.failed()
        W.wait_for(pred, W.STARTUP_TIMEOUT, "%d churn connections %s"
                   % (n, what))
        self.check()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(W.IO_TIMEOUT + 10)
            W.check(not t.is_alive(), "a churn thread is stuck")
        self.check()
        W.log("churn (%s): %d connections, %d echoed, 0 failed"
              % (self.name, self.made, self.ok))
        W.check(self.ok > 0, "churn (%s) made no connection" % self.name)
        return self.made


class LongLived:
    """N_LONG connections, each with a thread doing a round trip every
    LONG_PERIOD until close()."""

    def __init__(self, port, rng):
        self.lock = threading.Lock()
        self.socks = []
        for _ in range(N_LONG):
            self.socks.append(socket.create_connection(
                (W.LOOPBACK, port), timeout=W.IO_TIMEOUT))
        # One round trip each now: every connection is accepted, by a
        # generation-1 worker, before the first reload.
        for s in self.socks:
            W.echo_exchange(s, rng.randbytes(rng.randint(1, MAX_PAYLOAD)))
        self.ok = [1] * N_LONG
        self.failures = []
        self.stop = threading.Event()
        self.deadline = time.monotonic() + LONG_MAX_SECONDS
        self.threads = [threading.Thread(
            target=self._run, daemon=True,
            args=(i, random.Random(rng.getrandbits(64))))
            for i in range(N_LONG)]
        for t in self.threads:
            t.start()

    def _run(self, i, rng):
        s = self.socks[i]
        # Event.wait paces the round trips; it returns True on close().
        while not self.stop.wait(LONG_PERIOD):
            if time.monotonic() >= self.deadline:
                return
            data = rng.randbytes(rng.randint(1, MAX_PAYLOAD))
            try:
                W.echo_exchange(s, data, W.IO_TIMEOUT)
            except W.EchoError as e:
                kind, msg = e.kind, str(e)
            except OSError as e:
                kind, msg = "other", repr(e)
            else:
                with self.lock:
                    self.ok[i] += 1
                continue
            with self.lock:
                self.failures.append("%.3f connection %d, %s after %d round "
                                     "trips: %s" % (now(), i, kind,
                                                    self.ok[i], msg))
            return

    def total(self):
        with self.lock:
            return sum(self.ok)

    def snapshot(self):
        with self.lock:
            return list(self.ok)

    def check(self):
        with self.lock:
            bad = list(self.failures)
        W.check(not bad, "long-lived connections failed:\n  %s"
                % "\n  ".join(bad))

    def wait_progress(self, what):
        """Every connection completes a round trip begun after now."""
        snap = self.snapshot()

        def pred():
            with self.lock:
                if self.failures:
                    return True
                return all(a >= b + 2 for a, b in zip(self.ok, snap))
        W.wait_for(pred, W.STARTUP_TIMEOUT,
                   "a round trip on every long-lived connection %s" % what)
        self.check()

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(W.IO_TIMEOUT + 10)
            W.check(not t.is_alive(), "a long-lived thread is stuck")
        self.check()
        for s in self.socks:
            s.close()
        return self.total()


# --------------------------------------------------------------------------
# Workers and generations

def workers_json(sock):
    ws = ctl_json(sock, "workers")
    for w in ws["workers"]:
        for key in ("slot", "pid", "generation", "state"):
            W.check(key in w, "workers: an entry without %r: %r" % (key, w))
        # "starting": a new worker before its first heartbeat (seen while
        # a SIGHUP reload is in progress).
        W.check(w["state"] in ("starting", "running", "draining"),
                "workers: state %r: %r" % (w["state"], w))
    return ws


def running(ws):
    """{slot: pid} of the running workers."""
    return {w["slot"]: w["pid"] for w in ws["workers"]
            if w["state"] == "running"}


def is_worker_of(d, pid, slot):
    st = W.read_stat(pid)
    return st is not None and st[1] not in ("Z", "X", "x") and \
        st[2] == d.pid and st[0] == "weftd-w%d" % slot


class Tracker:
    """What the test knows of weftd's generations."""

    def __init__(self, d, sock, stats, port):
        self.d, self.sock, self.stats, self.port = d, sock, stats, port
        self.slots = SLOTS
        ws = workers_json(sock)
        self.gen = ws["generation"]
        W.check(self.gen == 1, "generation at start: %r" % ws)
        self.current = self._wait_generation(self.gen, set())
        self.seen = set(self.current.values())
        self.reload_times = []

    def _wait_generation(self, gen, old_pids):
        """Wait until workers --json shows generation gen: one running
        worker per slot, of generation gen, a new pid, a weftd-w<slot>
        child of the supervisor; every older worker draining.  Returns
        {slot: pid}."""
        last = [None]

        def pred():
            W.check(self.d.running(), "weftd exited with code %s"
                    % self.d.poll())
            ws = workers_json(self.sock)
            last[0] = ws
            if ws["generation"] != gen:
                return None
            cur = [w for w in ws["workers"] if w["generation"] == gen]
            if sorted(w["slot"] for w in cur) != list(range(self.slots)):
                return None
            if any(w["state"] != "running" or w["pid"] in old_pids or
                   not is_worker_of(self.d, w["pid"], w["slot"])
                   for w in cur):
                return None
            older = [w for w in ws["workers"] if w["generation"] != gen]
            if any(w["generation"] > gen or w["state"] != "draining"
                   for w in older):
                return None
            return {w["slot"]: w["pid"] for w in cur}
        try:
            cur = W.wait_for(pred, W.STARTUP_TIMEOUT, "generation %d" % gen)
        except W.TestFailure as e:
            raise W.TestFailure("%s; last workers reply %r" % (e, last[0]))
        self.d.workers()            # remember the pids for the cleanup
        return cur

    def reload(self, what):
        """weftctl --json reload: must succeed with the next generation."""
        rc, out, err, took = weftctl(self.sock, "--json", "reload",
                                     timeout=RELOAD_TIMEOUT)
        W.check(rc == 0, "reload (%s): exit %s, stdout %r, stderr %r"
                % (what, rc, out, err))
        try:
            reply = json.loads(out)
        except ValueError:
            raise W.TestFailure("reload (%s): reply not JSON: %r"
                                % (what, out))
        W.check(reply.get("ok") is True and
                reply.get("generation") == self.gen + 1,
                "reload (%s): %r, expected ok and generation %d"
                % (what, reply, self.gen + 1))
        self.reload_times.append(took)
        self._next_generation()
        return took

    def sighup(self):
        os.kill(self.d.pid, signal.SIGHUP)
        self._next_generation()

    def _next_generation(self):
        old = self.current
        self.gen += 1
        self.current = self._wait_generation(self.gen, self.seen)
        self.seen |= set(self.current.values())
        self.stats.poll()
        return old

    def refused(self, what, want):
        """weftctl reload must fail (exit 1) with every string of `want` on
        stderr, leaving the generation and the running workers as they
        were."""
        before = running(workers_json(self.sock))
        W.check(before == self.current, "running workers %r, expected %r"
                % (before, self.current))
        rc, out, err, took = weftctl(self.sock, "reload",
                                     timeout=RELOAD_TIMEOUT)
        W.check(rc == 1, "reload (%s): exit %s (want 1), stdout %r, "
                "stderr %r" % (what, rc, out, err))
        for s in want:
            W.check(s in err, "reload (%s): stderr does not contain %r: %r"
                    % (what, s, err))
        ws = workers_json(self.sock)
        W.check(ws["generation"] == self.gen, "reload (%s) refused, but the "
                "generation went from %d to %r" % (what, self.gen,
                                                     ws["generation"]))
        W.check(running(ws) == self.current and
                all(is_worker_of(self.d, pid, slot)
                    for slot, pid in self.current.items()),
                "reload (%s) refused, but the running workers went from %r "
                "to %r" % (what, self.current, running(ws)))
        W.check(set(self.d.workers()) >= set(self.current.values()),
                "worker processes %r lack %r" % (self.d.workers(),
                                                 self.current))
        self.stats.poll()
        W.log("ok   %s refused in %.0f ms: %s"
              % (what, took * 1000, " | ".join(err.strip().splitlines())))

    def wait_only_current(self, timeout, what):
        """Wait until workers --json and /proc show only the current
        generation's workers."""
        want = set(self.current.values())
        last = [None]

        def pred():
            ws = workers_json(self.sock)
            procs = self.d.workers()
            last[0] = (ws, procs)
            return {w["pid"] for w in ws["workers"]} == want and \
                set(procs) == want and ws["generation"] == self.gen
        try:
            W.wait_for(pred, timeout, what)
        except W.TestFailure as e:
            raise W.TestFailure("%s; last workers reply %r, worker "
                                "processes %r" % (e, last[0][0], last[0][1]))


# --------------------------------------------------------------------------
# Scenarios

def check_listening(port, what, slots=SLOTS):
    """The listener still has one LISTEN socket per slot."""
    n = W.listening_sockets(port)
    W.check(n == slots, "%s: %d LISTEN sockets on port %d, expected %d:\n%s"
            % (what, n, port, slots, W.ss_dump(port)))


def accepted_by(sock, pids):
    """{pid: connections_accepted} of these workers, from workers --json."""
    return {w["pid"]: w["connections_accepted"]
            for w in workers_json(sock)["workers"] if w["pid"] in pids}


def scenario_reloads(t, churn, longs, ll_pids):
    for i in range(N_RELOADS):
        took = t.reload("unchanged config, %d of %d" % (i + 1, N_RELOADS))
        churn.wait_progress(N_CHURN, "after reload %d" % (i + 1))
        longs.wait_progress("after reload %d" % (i + 1))
        t.stats.check()
        W.log("reload %d: generation %d in %.0f ms, workers %r"
              % (i + 1, t.gen, took * 1000, t.current))
        if i == 1:
            # Generation 1 has been draining for a whole reload: from now
            # on its workers must accept nothing.
            acc1 = accepted_by(t.sock, ll_pids)
            made1 = churn.made
    t.sighup()
    churn.wait_progress(N_CHURN, "after SIGHUP")
    longs.wait_progress("after SIGHUP")
    W.log("SIGHUP: generation %d, workers %r" % (t.gen, t.current))

    # The generation-1 workers of the long-lived connections drain; every
    # generation in between has no connection left and exits.
    want = ll_pids | set(t.current.values())
    last = [None]

    def settled():
        ws = workers_json(t.sock)
        last[0] = ws
        return {w["pid"] for w in ws["workers"]} == want
    try:
        W.wait_for(settled, OLD_EXIT_TIMEOUT, "only generation 1 (draining) "
                   "and %d (running) in workers" % t.gen)
    except W.TestFailure as e:
        raise W.TestFailure("%s; workers %r, expected pids %r"
                            % (e, last[0], sorted(want)))
    for w in last[0]["workers"]:
        if w["pid"] in ll_pids:
            W.check(w["generation"] == 1 and w["state"] == "draining" and
                    W.pid_alive(w["pid"]),
                    "a long-lived connections' worker: %r" % w)
    W.check(set(t.d.workers()) == want, "worker processes %r, expected %r"
            % (t.d.workers(), sorted(want)))
    longs.wait_progress("with generation 1 draining")
    acc2 = accepted_by(t.sock, ll_pids)
    W.check(acc2 == acc1, "draining generation-1 workers accepted "
            "connections: connections_accepted went from %r to %r while "
            "churn made %d" % (acc1, acc2, churn.made - made1))
    check_listening(t.port, "after %d reloads" % (N_RELOADS + 1))
    churn.check()
    ms = sorted(x * 1000 for x in t.reload_times)
    W.log("ok   1: %d reloads + SIGHUP: generation %d; reload call %.0f / "
          "%.0f / %.0f ms (min / median / max); generation-1 workers %r "
          "still draining with the long-lived connections"
          % (N_RELOADS, t.gen, ms[0], statistics.median(ms), ms[-1],
             sorted(ll_pids)))
    return ms


def scenario_broken(t, churn, path, good):
    # A syntax error at a known line.
    bad = list(good)
    bad.insert(3, "this is not libconfig at all;")
    write_config(path, bad)
    t.refused("a syntax error at line 4", ["%s:4:" % path])
    churn.check()

    # Two errors at once: each is reported with its line.
    bad = list(good)
    bad.insert(1, "frobnicate = 1;")
    ln = line_of(bad, 'name = "echo";')
    bad[ln - 1] = bad[ln - 1].replace('protocol = "echo";',
                                      'protocol = "echo"; backlog = 0;')
    write_config(path, bad)
    t.refused("an unknown key at line 2, backlog = 0 at line %d" % ln,
              ["%s:2:" % path, "%s:%d:" % (path, ln)])
    churn.check()


    # A new listener on a port another process holds: refused, and the
    # refusal leaves no trace in the stats (no listener of that name).
    held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    held.bind((W.LOOPBACK, 0))
    held.listen(1)
    try:
        names = [l["name"] for l in ctl_json(t.sock, "stats")["listeners"]]
        bad = list(good)
        bad.insert(len(bad) - 1, '  ,{ name = "ghost"; listen = '
                   '"127.0.0.1:%d"; protocol = "echo"; }'
                   % held.getsockname()[1])
        write_config(path, bad)
        t.refused("a new listener on a port in use", ["ghost"])
        after = [l["name"]
                 for l in ctl_json(t.sock, "stats")["listeners"]]
        W.check(after == names, "a refused reload changed the stats "
                "listeners: %r -> %r" % (names, after))
    finally:
        held.close()
    churn.check()

    write_config(path, good)
    took = t.reload("the good config restored")
    churn.wait_progress(N_CHURN, "after the good config is restored")
    W.log("ok   2: 4 broken configs refused; the restored one reloads in "
          "%.0f ms: generation %d" % (took * 1000, t.gen))


def scenario_add_listener(t, churn, path, port, port2):
    W.check(not W.tcp_answers(port2), "port %d answers before it is "
            "configured" % port2)
    lines = config_lines(port, port2)
    write_config(path, lines)
    took = t.reload("a second listener")
    # reload answers when the new generation serves: no waiting here.
    W.echo_roundtrip(port2, b"the new listener echoes")
    # The new listener's idle_timeout is in force.
    s = socket.create_connection((W.LOOPBACK, port2), timeout=W.IO_TIMEOUT)
    try:
        W.echo_exchange(s, b"then idle")
        t0 = time.monotonic()
        s.settimeout(W.IO_TIMEOUT)
        try:
            got = s.recv(100)
            how = "EOF" if got == b"" else "data %r" % got
        except ConnectionResetError:
            how = "reset"
        except socket.timeout:
            how = "nothing"
        idle = time.monotonic() - t0
    finally:
        s.close()
    W.check(how in ("EOF", "reset") and
            IDLE2_MS / 1000 - 0.1 <= idle <= IDLE2_MS / 1000 + DRAIN_SLACK,
            "an idle connection to the new listener (idle_timeout %d ms): "
            "%s after %.3f s" % (IDLE2_MS, how, idle))
    churn.wait_progress(N_CHURN, "after the listener was added")
    check_listening(port, "the first listener, after one was added")
    check_listening(port2, "the added listener")
    W.check("echo2" in {l["name"] for l in t.stats.poll()["listeners"]},
            "stats does not list the new listener echo2")
    W.log("ok   3: reload with a second listener in %.0f ms; port %d echoes; "
          "an idle connection to it closed (%s) after %.3f s (idle_timeout "
          "%d ms); the old port kept serving" % (took * 1000, port2, how,
                                                 idle, IDLE2_MS))

    # Remove it: its port refuses connections once the old workers have
    # taken what was queued and closed their copies; echo keeps serving.
    write_config(path, config_lines(port))
    t.reload("the listener echo2 removed")

    def gone():
        try:
            socket.create_connection((W.LOOPBACK, port2), timeout=2).close()
        except ConnectionRefusedError:
            return True
        return False
    W.wait_for(gone, 10, "port %d to refuse connections" % port2)
    W.check("echo2" in {l["name"] for l in t.stats.poll()["listeners"]},
            "the removed listener's counts left the stats")
    churn.check()
    # And back again, for the scenarios that follow.
    write_config(path, lines)
    t.reload("the listener echo2 added again")
    W.echo_roundtrip(port2, b"back again")
    churn.check()
    W.log("ok   3: listener echo2 removed (port %d refused) and added "
          "back; the first listener kept serving" % port2)
    return lines


def scenario_workers(t, churn, path, lines):
    """workers 2 -> 3 -> 1 -> 2 under churn: 0 failures; the port has one
    socket per slot after each (the sockets of slots that go are closed
    once their old workers took what was queued)."""
    for n in (3, 1, SLOTS):
        write_config(path, [l.replace("workers = %d;" % SLOTS,
                                      "workers = %d;" % n) for l in lines])
        t.slots = n
        t.reload("workers = %d" % n)
        W.wait_for(lambda: W.listening_sockets(t.port) == n, 10,
                   "%d LISTEN sockets on port %d" % (n, t.port))
        churn.wait_progress(N_CHURN, "after workers = %d" % n)
        churn.check()
    W.log("ok   workers: 2 -> 3 -> 1 -> 2 with churn, 0 failures")


def scenario_old_exit(t, churn, longs, ll_pids):
    longs.wait_progress("before they are closed")
    rts = longs.close()
    t0 = time.monotonic()
    W.wait_for(lambda: not any(W.pid_alive(p) for p in ll_pids),
               OLD_EXIT_TIMEOUT, "the generation-1 workers %r to exit"
               % sorted(ll_pids))
    gone = time.monotonic() - t0
    t.wait_only_current(OLD_EXIT_TIMEOUT, "only generation %d in workers"
                        % t.gen)
    churn.check()
    W.log("ok   4: long-lived connections closed after %d round trips; "
          "generation-1 workers %r gone %.3f s later; workers shows only "
          "generation %d %r" % (rts, sorted(ll_pids), gone, t.gen,
                                t.current))
    return rts


def idle_watch(s, result):
    """Wait for the server to close an idle connection: records the
    monotonic time and how."""
    s.settimeout(OLD_EXIT_TIMEOUT)
    try:
        got = s.recv(100)
        result["how"] = "EOF" if got == b"" else "data %r" % got[:20]
    except ConnectionResetError:
        result["how"] = "reset"
    except socket.timeout:
        result["how"] = "still open"
    except OSError as e:
        result["how"] = repr(e)
    result["at"] = time.monotonic()


def scenario_shutdown_timeout(t, churn, path, port, port2):
    lines = config_lines(port, port2, shutdown=SHUTDOWN_SHORT)
    write_config(path, lines)
    t.reload("shutdown_timeout = %d" % SHUTDOWN_SHORT)
    t.wait_only_current(OLD_EXIT_TIMEOUT, "generation %d alone" % t.gen)

    # Idle connections on the workers started with shutdown_timeout = 1.
    socks = [socket.create_connection((W.LOOPBACK, port),
                                      timeout=W.IO_TIMEOUT)
             for _ in range(4)]
    try:
        for s in socks:
            W.echo_exchange(s, b"accepted, now idle")
        old = dict(t.current)
        results = [{} for _ in socks]
        threads = [threading.Thread(target=idle_watch, args=(s, r),
                                    daemon=True)
                   for s, r in zip(socks, results)]
        for th in threads:
            th.start()
        t0 = time.monotonic()
        took = t.reload("with idle connections, shutdown_timeout = %d"
                        % SHUTDOWN_SHORT)
        t1 = t0 + took
        exited = {}

        def all_gone():
            for p in old.values():
                if p not in exited and not W.pid_alive(p):
                    exited[p] = time.monotonic()
            return len(exited) == len(old)
        W.wait_for(all_gone, SHUTDOWN_SHORT + OLD_EXIT_TIMEOUT,
                   "the old workers %r to exit" % old, interval=0.002,
                   max_interval=0.01)
        for th in threads:
            th.join(OLD_EXIT_TIMEOUT + 5)
            W.check(not th.is_alive(), "an idle watcher is stuck")
    finally:
        for s in socks:
            s.close()
    late = {p: at - t1 for p, at in exited.items()}
    W.check(all(x <= SHUTDOWN_SHORT + DRAIN_SLACK for x in late.values()),
            "old workers exited %s after the reload answered (%.3f s "
            "call); shutdown_timeout %d s + %.1f s allowed"
            % (", ".join("%d: %.3f s" % kv for kv in sorted(late.items())),
               took, SHUTDOWN_SHORT, DRAIN_SLACK))
    closed = [(r.get("how"), r.get("at", t0) - t0) for r in results]
    W.check(all(how in ("EOF", "reset") for how, _ in closed),
            "idle connections on the old workers: %r" % closed)
    W.check(all(at >= SHUTDOWN_SHORT - 0.1 for _, at in closed),
            "idle connections closed %s s after the reload began, before "
            "shutdown_timeout (%d s)" % (["%.3f" % at for _, at in closed],
                                         SHUTDOWN_SHORT))
    t.wait_only_current(OLD_EXIT_TIMEOUT, "only generation %d in workers"
                        % t.gen)
    forced = t.stats.poll()["totals"]["connections_forced"]
    W.check(forced >= len(closed), "connections_forced %d, but %d idle "
            "connections were closed by shutdown_timeout"
            % (forced, len(closed)))
    churn.check()
    W.log("ok   5: shutdown_timeout %d: old workers exited %s after the "
          "reload answered (call %.0f ms); idle connections closed (%s) "
          "%s s after the reload began"
          % (SHUTDOWN_SHORT, ", ".join("%.3f s" % x for x in
                                       sorted(late.values())),
             took * 1000, "/".join(sorted({h for h, _ in closed})),
             ", ".join("%.3f" % at for _, at in closed)))


def final_stats(t, made):
    last = [None]

    def quiet():
        st = t.stats.poll()
        last[0] = st["totals"]
        tot = st["totals"]
        return tot["connections_active"] == 0 and \
            tot["connections_accepted"] == tot["connections_closed"]
    try:
        W.wait_for(quiet, W.STARTUP_TIMEOUT, "stats: no connection open")
    except W.TestFailure as e:
        raise W.TestFailure("%s; totals %r" % (e, last[0]))
    tot = last[0]
    W.check(tot["connections_accepted"] >= made,
            "stats: %d connections accepted, but the clients made %d"
            % (tot["connections_accepted"], made))
    W.log("ok   stats: %d accepted = closed >= %d made by the clients; "
          "%d polls, no counter went back"
          % (tot["connections_accepted"], made, t.stats.polls))


def main():
    W.weftctl_path()
    rng = W.make_rng()
    tmp = W.make_tmpdir()
    sock = os.path.join(tmp, "weft.sock")   # the default, in weftd's cwd
    port, port2 = W.free_port(), W.free_port()
    while port2 == port:
        port2 = W.free_port()
    good = config_lines(port)
    with W.Weftd("\n".join(good) + "\n", tmpdir=tmp, name="reload") as d:
        path = d.config_path

        def ping():
            W.check(d.running(), "weftd exited with code %s" % d.poll())
            return weftctl(sock, "ping")[0] == 0
        W.wait_for(ping, W.STARTUP_TIMEOUT, "weftctl ping to answer")
        d.wait_workers(SLOTS)
        d.wait_tcp(port)
        stats = StatsWatch(sock)
        t = Tracker(d, sock, stats, port)

        longs = LongLived(port, rng)

        def counted():
            ws = workers_json(sock)
            n = sum(w["connections_active"] for w in ws["workers"])
            return ws if n == N_LONG else None
        ws = W.wait_for(counted, W.STARTUP_TIMEOUT, "workers to show the "
                        "%d long-lived connections" % N_LONG)
        ll_pids = {w["pid"] for w in ws["workers"]
                   if w["connections_active"] > 0}
        W.check(ll_pids and ll_pids <= set(t.current.values()),
                "the long-lived connections' workers %r are not among %r"
                % (ll_pids, t.current))
        W.log("%d long-lived connections on generation-1 workers %r"
              % (N_LONG, {w["pid"]: w.get("connections_active")
                          for w in ws["workers"]}))
        made = N_LONG
        churned = 0

        churn = Churn(port, rng, "scenario 1")
        churn.wait_progress(4 * N_CHURN, "before the first reload")
        ms = scenario_reloads(t, churn, longs, ll_pids)
        churned += churn.finish()

        churn = Churn(port, rng, "scenario 2")
        churn.wait_progress(N_CHURN, "before scenario 2")
        scenario_broken(t, churn, path, good)
        longs.wait_progress("after the refused reloads")
        churned += churn.finish()

        churn = Churn(port, rng, "scenario 3")
        churn.wait_progress(N_CHURN, "before scenario 3")
        lines = scenario_add_listener(t, churn, path, port, port2)
        longs.wait_progress("after the listener was added")
        scenario_workers(t, churn, path, lines)
        longs.wait_progress("after the worker count changed")
        churned += churn.finish()
        made += 2

        churn = Churn(port, rng, "scenario 4")
        churn.wait_progress(N_CHURN, "before scenario 4")
        rts = scenario_old_exit(t, churn, longs, ll_pids)
        churned += churn.finish()

        churn = Churn(port, rng, "scenario 5")
        churn.wait_progress(N_CHURN, "before scenario 5")
        scenario_shutdown_timeout(t, churn, path, port, port2)
        churned += churn.finish()
        made += 4

        stats.finish()
        final_stats(t, made + churned)
        rc, _ = d.stop(limit=W.EXIT_TIMEOUT)
        W.check(rc == 0, "exit code %s after SIGTERM" % rc)

    W.log("reload call: %.0f / %.0f / %.0f ms (min / median / max of %d)"
          % (ms[0], statistics.median(ms), ms[-1], len(ms)))
    print("reload: %d churn connections, %d long-lived round trips, "
          "0 failed" % (churned, rts))
    sys.stdout.flush()


if __name__ == "__main__":
    W.run(main, timeout=180)
