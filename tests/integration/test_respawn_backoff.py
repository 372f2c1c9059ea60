"""A worker that keeps dying at start is restarted with a growing delay.

One worker; it is killed with SIGKILL as soon as it appears, four times in
a row. The first early death is replaced at once; the next ones wait 0.1 s,
0.2 s and 0.4 s, and each delay is logged. Then a worker is left up for
more than a second and killed: the backoff is reset, so it is replaced at
once and no new delay is logged.

Synchronisation: polls /proc for each new worker pid and the log for each
line, with deadlines; "up for more than a second" is read from the
worker's start time in /proc.
"""

import os
import re
import signal

import weftlib as W

DELAY_RE = re.compile(r"worker 0 died (\d+) time\(s\) within 1 s of start; "
                      r"next start in ([0-9.]+) s")


def current_worker(d, old=None):
    """Wait for the worker of slot 0 that is not `old`; returns its pid."""
    def pred():
        d._check_alive()
        pids = [p for p, c in d.workers().items() if c == "weftd-w0"]
        return pids[0] if pids and pids[0] != old else None
    return W.wait_for(pred, 20, "a new worker in slot 0")


def delays(d):
    return [(int(n), float(s)) for n, s in DELAY_RE.findall(d.log_text())]


def main():
    port = W.free_port("tcp")
    conf = ("workers = 1;\n"
            "listeners = (\n"
            '  { name = "echo"; listen = "127.0.0.1:%d"; protocol = "echo"; }\n'
            ");\n" % port)
    with W.Weftd(conf) as d:
        pid = current_worker(d)
        for _ in range(4):
            os.kill(pid, signal.SIGKILL)
            pid = current_worker(d, old=pid)
        W.wait_for(lambda: len(delays(d)) == 3, 10, "three backoff lines")
        got = delays(d)
        W.log("backoff logged: %r" % got)
        W.check(got == [(2, 0.1), (3, 0.2), (4, 0.4)],
                "backoff delays %r, expected 0.1, 0.2, 0.4 s" % got)

        # Up for more than a second: the next death resets the backoff.
        W.wait_for(lambda: W.boottime() - W.start_time(pid) > 1.2, 10,
                   "the worker to be up for more than a second")
        os.kill(pid, signal.SIGKILL)
        pid = current_worker(d, old=pid)
        d.wait_tcp(port)
        W.check(len(delays(d)) == 3, "a delay was logged after a worker "
                "that had stayed up died: %r" % delays(d))
        W.log("a worker that stayed up was replaced without delay")


if __name__ == "__main__":
    W.run(main, timeout=120)
