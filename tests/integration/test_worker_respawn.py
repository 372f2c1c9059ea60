"""A worker killed with SIGKILL is replaced in the same slot within 1 s, and
no connection is lost meanwhile; a SIGKILLed supervisor takes its workers
with it (PR_SET_PDEATHSIG) within 2 s.

Scenario 1 (done for slot 0, then slot 1): kill -9 the worker; wait until
its pid is gone (no /proc entry, or a zombie); immediately run 8 client
threads for 2 s, each looping connect / send / receive all / close with
random payloads.  Every connection must be served with the exact bytes:
refused, reset, timeout, early EOF and mismatch counts must all be 0.  A
poller thread, started before the kill, records when a replacement appears
(new pid, same comm weftd-wN, parent = supervisor); it must appear within
1 s of the kill.  Then there are exactly 2 workers again.

Scenario 1b: with a single worker (-w 1), kill it and immediately open 20
connections and send on them; each must be echoed exactly (they wait in the
supervisor-owned socket's accept queue until the replacement serves them).

Scenario 2: kill -9 the supervisor; every worker must be gone (no /proc
entry, or a zombie of whatever reaps orphans) within 2 s, and the port must
no longer have LISTEN sockets.

Synchronisation: /proc polling with deadlines (worker count, pid gone,
replacement appeared), a TCP probe echo for readiness; client threads run
for a fixed 2 s window, each bounded in iterations, and are joined with a
timeout.
"""

import os
import random
import selectors
import signal
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True    # no __pycache__ in the source tree
import weftlib as W  # noqa: E402

THREADS = 8
LOAD_SECONDS = 2.0
MAX_ITER_PER_THREAD = 2500   # bounds TIME_WAIT sockets and run time
RESPAWN_LIMIT = 1.0
PDEATH_LIMIT = 2.0


# Runs in its own process so that the client threads (and the GIL) cannot
# delay the observation: prints "ready", then "PID MONOTONIC" as soon as a
# live child of SUP named COMM other than VICTIM exists.  CLOCK_MONOTONIC is
# system-wide, so its times compare with the test's time.monotonic().
POLLER = r"""
import os, sys, time
sup, comm, victim, timeout = (int(sys.argv[1]), sys.argv[2],
                              int(sys.argv[3]), float(sys.argv[4]))
deadline = time.monotonic() + timeout
print("ready", flush=True)
while time.monotonic() < deadline:
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == victim:
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as f:
                data = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        c = data[data.find("(") + 1:data.rfind(")")]
        rest = data[data.rfind(")") + 2:].split()
        if c == comm and rest[1] == str(sup) and rest[0] not in "ZXx":
            print(name, time.monotonic(), flush=True)
            sys.exit(0)
    time.sleep(0.002)
print("none", flush=True)
sys.exit(1)
"""


class Poller:
    """Watches the supervisor's children for a replacement of `victim`."""

    def __init__(self, d, victim, comm, timeout=10.0):
        self.timeout = timeout
        self.proc = W.spawn_helper(
            [sys.executable, "-c", POLLER, str(d.pid), comm, str(victim),
             str(timeout)], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        ok = sel.select(W.STARTUP_TIMEOUT)
        sel.close()
        line = self.proc.stdout.readline() if ok else b""
        W.check(line.strip() == b"ready", "poller process did not start: %r"
                % line)

    def result(self):
        """(pid, monotonic time seen) or None."""
        try:
            out, _ = self.proc.communicate(timeout=self.timeout + 10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            return None
        fields = out.split()
        if self.proc.returncode != 0 or len(fields) != 2:
            return None
        return int(fields[0]), float(fields[1])


def client(idx, port, seed, stop_at, stats, lock, errors):
    rng = random.Random(seed * 1000 + idx)
    mine = dict.fromkeys(("ok", "refused", "reset", "timeout", "eof",
                          "mismatch", "other"), 0)
    nbytes = 0
    for _ in range(MAX_ITER_PER_THREAD):
        if time.monotonic() >= stop_at:
            break
        size = rng.choice((1, 2, 100, 1400, 4096, 65536)) \
            if rng.random() < 0.2 else rng.randint(1, 16384)
        data = rng.randbytes(size)
        try:
            W.echo_roundtrip(port, data, timeout=5.0)
            mine["ok"] += 1
            nbytes += size
        except W.EchoError as e:
            mine[e.kind] = mine.get(e.kind, 0) + 1
            with lock:
                if len(errors) < 20:
                    errors.append("thread %d, %d bytes: %s" % (idx, size, e))
    with lock:
        for k, v in mine.items():
            stats[k] = stats.get(k, 0) + v
        stats["bytes"] = stats.get("bytes", 0) + nbytes


def kill_and_load(d, port, victim, comm, seed):
    poller = Poller(d, victim, comm)
    st = W.start_time(victim)
    age = W.boottime() - st if st is not None else float("nan")
    t_kill = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    W.wait_for(lambda: not W.pid_alive(victim), 5.0,
               "killed worker %d to be gone" % victim, interval=0.001)
    t_gone = time.monotonic()
    W.log("killed %s (pid %d, about %.2f s old); gone after %.1f ms"
          % (comm, victim, age, (t_gone - t_kill) * 1000))

    stats, errors, lock = {}, [], threading.Lock()
    t_load = time.monotonic()
    stop_at = t_load + LOAD_SECONDS
    threads = [threading.Thread(target=client, daemon=True,
                                args=(i, port, seed, stop_at, stats, lock,
                                      errors))
               for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(LOAD_SECONDS + 30)
    W.check(not any(t.is_alive() for t in threads),
            "client threads did not finish in time")
    found = poller.result()

    bad = {k: v for k, v in stats.items()
           if k not in ("ok", "bytes") and v}
    W.log("load after killing %s: %d connections served in %.2f s, %d "
          "bytes, failures %r" % (comm, stats.get("ok", 0),
                                  time.monotonic() - t_load,
                                  stats.get("bytes", 0), bad or 0))
    W.check(not bad, "connections failed after killing %s: %r\n  %s"
            % (comm, bad, "\n  ".join(errors)))
    W.check(stats.get("ok", 0) > 0, "no connection was served")

    W.check(found is not None, "no replacement for %s (pid %d) "
            "appeared within %.0f s; children now %r"
            % (comm, victim, poller.timeout, W.children(d.pid)))
    new_pid, t_seen = found
    d.seen.add(new_pid)
    observed = t_seen - t_kill
    W.log("replacement %s pid %d seen %.1f ms after the kill"
          % (comm, new_pid, observed * 1000))
    W.check(observed <= RESPAWN_LIMIT,
            "replacement %s appeared %.3f s after the kill (limit %.1f s)"
            % (comm, observed, RESPAWN_LIMIT))
    stat = W.read_stat(new_pid)
    W.check(stat is not None and stat[2] == d.pid,
            "replacement %d has parent %s, expected supervisor %d"
            % (new_pid, stat and stat[2], d.pid))

    after = d.wait_workers(2, timeout=5.0)
    W.check(sorted(after.values()) == ["weftd-w0", "weftd-w1"],
            "workers after respawn: %r" % after)
    W.check(after.get(new_pid) == comm, "replacement %d is not %s in %r"
            % (new_pid, comm, after))


def single_worker_queue(rng):
    """-w 1: kill the only worker; connections made before a replacement
    exists wait in the supervisor-owned socket's accept queue and are all
    served by the replacement."""
    port = W.free_port("tcp")
    conf = ("workers = 1;\n"
            "listeners = (\n"
            '  { name = "echo"; listen = "127.0.0.1:%d"; protocol = "echo"; }\n'
            ");\n" % port)
    with W.Weftd(conf, ["-w", "1"], name="weftd-single") as d:
        victim = list(d.wait_workers(1))[0]
        d.wait_tcp(port)
        t_kill = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        W.wait_for(lambda: not W.pid_alive(victim), 5.0,
                   "killed worker %d to be gone" % victim, interval=0.001)
        socks, payloads = [], []
        try:
            for i in range(20):
                s = W.socket.create_connection((W.LOOPBACK, port), timeout=10)
                socks.append(s)
                data = rng.randbytes(rng.randint(1, 8192))
                payloads.append(data)
                s.sendall(data)
            workers_then = d.workers()
            W.log("-w 1: 20 connections made %.1f ms after the kill; "
                  "workers at that point: %r"
                  % ((time.monotonic() - t_kill) * 1000, workers_then))
            for i, (s, data) in enumerate(zip(socks, payloads)):
                got = bytearray()
                s.settimeout(10)
                while len(got) < len(data):
                    try:
                        chunk = s.recv(65536)
                    except OSError as e:
                        raise W.TestFailure("queued connection %d: %r after "
                                            "%d/%d bytes" % (i, e, len(got),
                                                             len(data)))
                    if not chunk:
                        raise W.TestFailure("queued connection %d closed "
                                            "after %d/%d bytes"
                                            % (i, len(got), len(data)))
                    got += chunk
                W.check(bytes(got) == data, "queued connection %d: wrong "
                        "bytes (first difference at %d)"
                        % (i, W.first_difference(got, data)))
        finally:
            for s in socks:
                s.close()
        after = d.wait_workers(1, timeout=5.0)
        W.check(list(after.values()) == ["weftd-w0"] and victim not in after,
                "after the respawn: %r" % after)
        W.log("-w 1: all 20 queued connections served by the replacement "
              "%r" % after)


def main():
    rng = W.make_rng()
    single_worker_queue(rng)
    seed = rng.randrange(1 << 30)
    port = W.free_port("tcp")
    conf = ("workers = 2;\n"
            "listeners = (\n"
            '  { name = "echo"; listen = "127.0.0.1:%d"; protocol = "echo"; }\n'
            ");\n" % port)
    with W.Weftd(conf, ["-w", "2"]) as d:
        d.wait_workers(2)
        d.wait_tcp(port)

        for slot in (0, 1):
            comm = "weftd-w%d" % slot
            workers = d.workers()
            victim = [p for p, c in workers.items() if c == comm]
            W.check(len(victim) == 1, "no single %s in %r" % (comm, workers))
            kill_and_load(d, port, victim[0], comm, seed + slot)

        # Scenario 2: SIGKILL the supervisor.
        workers = d.workers()
        W.check(len(workers) == 2, "workers before killing the supervisor: "
                "%r" % workers)
        t0 = time.monotonic()
        os.kill(d.pid, signal.SIGKILL)
        d.proc.wait(10)
        try:
            W.wait_for(lambda: not any(W.pid_alive(p) for p in workers),
                       10.0, "workers to exit after the supervisor's SIGKILL",
                       interval=0.002)
        except W.TestFailure:
            raise W.TestFailure(
                "workers still alive 10 s after the supervisor was "
                "SIGKILLed: %r" % {p: W.read_stat(p) for p in workers
                                   if W.pid_alive(p)})
        elapsed = time.monotonic() - t0
        W.log("supervisor SIGKILLed: workers %r gone in %.1f ms"
              % (sorted(workers), elapsed * 1000))
        W.check(elapsed <= PDEATH_LIMIT, "workers took %.3f s to exit after "
                "the supervisor's SIGKILL (limit %.1f s)"
                % (elapsed, PDEATH_LIMIT))
        left = d.own_pids()
        W.check(not left, "processes of this weftd remain: %r" % left)
        try:
            W.wait_for(lambda: W.listening_sockets(port) == 0, 2.0,
                       "no LISTEN socket on port %d" % port)
        except W.TestFailure:
            raise W.TestFailure("LISTEN sockets remain on port %d after the "
                                "supervisor and workers died:\n%s"
                                % (port, W.ss_dump(port)))


if __name__ == "__main__":
    W.run(main, timeout=150)
