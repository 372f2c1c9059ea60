"""Binary upgrade under load: a new supervisor takes over, nothing fails.

weftd runs from a copy of the binary in a temp dir (pid_file set, 2
workers) while 4 client threads churn echo connections. Then:

1. The copy is replaced by a program that exits at once: `weftctl
   upgrade` exits 1, the old weftd keeps serving with the same pid, and
   the pid file names it again.
2. The real binary is copied back: `weftctl upgrade` exits 0 and names
   the new supervisor's pid; the old supervisor exits 0 and its workers
   are gone; the new one (same command line) has 2 workers, the pid file
   names it, stats continue (no total went backwards), generation + 1.

Every churn connection, before, during and after, must be echoed intact:
"upgrade: N connections, 0 failed". Synchronisation: weftctl's synchronous
answer, then waits on pids and counters with deadlines.
"""

import os
import shutil
import stat
import threading
import time

import weftlib as W

THREADS = 4


class Churn:
    """Threads doing connect / echo / close until stopped."""

    def __init__(self, port):
        self.port, self.ok, self.failed = port, 0, []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(i,),
                                         daemon=True)
                        for i in range(THREADS)]
        for t in self.threads:
            t.start()

    def run(self, i):
        rng = W.make_rng(i)
        deadline = time.monotonic() + 60
        while not self.stop.is_set() and time.monotonic() < deadline:
            data = rng.randbytes(rng.randrange(1, 2048))
            try:
                W.echo_roundtrip(self.port, data)
                with self.lock:
                    self.ok += 1
            except W.EchoError as e:
                with self.lock:
                    self.failed.append(str(e))
            self.stop.wait(0.002)

    def progress(self, n, what):
        start = self.ok
        W.wait_for(lambda: self.ok >= start + n or self.failed, 20, what)
        W.check(not self.failed, "churn failed: %s" % self.failed[:5])

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(30)
        W.check(not self.failed, "churn failed: %s" % self.failed[:5])
        return self.ok


def read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def main():
    port = W.free_port("tcp")
    tmp = W.make_tmpdir()
    exe = os.path.join(tmp, "weftd")
    shutil.copy2(W.weftd_path(), exe)
    pidf = os.path.join(tmp, "weft.pid")
    conf = ("workers = 2;\n"
            "shutdown_timeout = 10;\n"
            'pid_file = "%s";\n'
            "listeners = (\n"
            '  { name = "echo"; listen = "127.0.0.1:%d"; protocol = "echo"; }\n'
            ");\n" % (pidf, port))
    os.environ["WEFTD"] = exe      # Weftd starts the copy
    sock = os.path.join(tmp, "weft.sock")
    with W.Weftd(conf, tmpdir=tmp) as d:
        old_workers = d.wait_workers(2)
        d.wait_tcp(port)
        W.wait_for(lambda: read_pid(pidf) == d.pid, 10, "the pid file")
        churn = Churn(port)
        churn.progress(100, "churn before the upgrades")

        # 1. A binary that cannot start: the old weftd serves on.
        real = exe + ".real"
        os.rename(exe, real)
        with open(exe, "w") as f:
            f.write("#!/bin/sh\nexit 1\n")
        os.chmod(exe, stat.S_IRWXU)
        rc, out, err = W.weftctl(sock, "upgrade", timeout=30)
        W.check(rc == 1 and "upgrade" not in out,
                "upgrade to a broken binary: exit %s, %r %r" % (rc, out, err))
        W.check(d.running(), "the old weftd exited after a failed upgrade")
        W.check(read_pid(pidf) == d.pid, "pid file %d after the failed "
                "upgrade, want %d" % (read_pid(pidf), d.pid))
        churn.progress(100, "churn after the failed upgrade")
        W.log("ok   1: broken binary refused (%s); pid %d serves on"
              % (err.strip(), d.pid))

        # 2. The real binary again: a new supervisor takes over.
        os.replace(real, exe)
        before = W.ctl_json(sock, "stats")
        rc, out, err = W.weftctl(sock, "--json", "upgrade", timeout=30)
        W.check(rc == 0, "upgrade: exit %s: %s" % (rc, err))
        import json
        new_pid = json.loads(out)["pid"]
        W.check(new_pid != d.pid, "the same pid after the upgrade")
        W.wait_for(lambda: d.poll() is not None, 15,
                   "the old supervisor to exit")
        W.check(d.poll() == 0, "the old supervisor exited with %s"
                % d.poll())
        W.wait_for(lambda: not any(W.pid_alive(p) for p in old_workers), 15,
                   "the old workers to exit")
        d.seen.add(new_pid)
        new_workers = W.wait_for(
            lambda: [p for p, c in W.children(new_pid).items()
                     if c.startswith("weftd-w")] if len(
                [c for c in W.children(new_pid).values()
                 if c.startswith("weftd-w")]) == 2 else None,
            15, "2 workers of the new supervisor")
        d.seen.update(new_workers)
        W.check(read_pid(pidf) == new_pid, "pid file %d, want %d"
                % (read_pid(pidf), new_pid))
        churn.progress(200, "churn after the upgrade")
        after = W.ctl_json(sock, "stats")
        W.check(after["pid"] == new_pid, "stats from pid %r" % after["pid"])
        W.check(after["generation"] == before["generation"] + 1,
                "generation %r -> %r" % (before["generation"],
                                        after["generation"]))
        for k, v in before["totals"].items():
            if k != "connections_active" and isinstance(v, int):
                W.check(after["totals"][k] >= v, "%s went back: %d -> %d"
                        % (k, v, after["totals"][k]))
        made = churn.finish()
        W.log("upgrade: %d connections, 0 failed; supervisor %d -> %d"
              % (made, d.pid, new_pid))
        os.kill(new_pid, 15)
        W.wait_for(lambda: not W.pid_alive(new_pid), 15,
                   "the new supervisor to stop")


if __name__ == "__main__":
    W.run(main, timeout=150)
