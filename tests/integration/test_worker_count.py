"""Worker count: config value, -w override, "auto".

  1. config workers = 1 started with -w 3: exactly 3 workers named
     weftd-w0..weftd-w2, children of the supervisor; 3 LISTEN sockets on the
     port; echo works; SIGTERM stops everything within 2 s with exit 0.
  2. config workers = "auto": at least one worker, named weftd-w0..w(N-1),
     and as many LISTEN sockets as workers; SIGTERM as above.

Synchronisation: /proc polled until the expected worker count is reached
(for "auto": until the count is stable and equals the LISTEN socket count),
TCP probe echo polled until it answers; all with deadlines.
"""

import signal
import sys

sys.dont_write_bytecode = True    # no __pycache__ in the source tree
import weftlib as W  # noqa: E402


def conf(port, workers):
    return ("workers = %s;\n"
            "listeners = (\n"
            '  { name = "echo"; listen = "127.0.0.1:%d"; protocol = "echo"; }\n'
            ");\n" % (workers, port))


def check_workers(d, port, n):
    workers = d.workers()
    names = sorted(workers.values(), key=lambda c: int(c[7:]))
    W.check(names == ["weftd-w%d" % i for i in range(n)],
            "worker names %r, expected weftd-w0..weftd-w%d" % (names, n - 1))
    try:
        W.wait_for(lambda: W.listening_sockets(port) == n, 5.0,
                   "%d LISTEN sockets" % n)
    except W.TestFailure:
        raise W.TestFailure("expected %d LISTEN sockets on port %d, ss "
                            "shows %d:\n%s" % (n, port,
                                               W.listening_sockets(port),
                                               W.ss_dump(port)))
    d.wait_tcp(port)
    for i in range(20):
        W.echo_roundtrip(port, b"x" * (i * 97 + 1))


def main():
    port = W.free_port()
    with W.Weftd(conf(port, 1), ["-w", "3"], name="weftd-w3") as d:
        d.wait_workers(3)
        check_workers(d, port, 3)
        W.log("-w 3 overrides workers = 1: 3 workers, 3 LISTEN sockets")
        rc, _ = d.stop(signal.SIGTERM, limit=2.0)
        W.check(rc == 0, "exit code %s after SIGTERM" % rc)

    port = W.free_port()
    with W.Weftd(conf(port, '"auto"'), name="weftd-auto") as d:
        # The count is unknown in advance: wait until it is non-zero and
        # unchanged over a few polls, then compare with the LISTEN sockets.
        hist = []

        def stable():
            d._check_alive()
            hist.append(len(d.workers()))
            return len(hist) >= 5 and hist[-1] > 0 and \
                len(set(hist[-5:])) == 1 and \
                W.listening_sockets(port) == hist[-1]
        W.wait_for(stable, W.STARTUP_TIMEOUT,
                   "a stable non-zero worker count equal to the LISTEN "
                   "socket count (history %r)" % hist, interval=0.05)
        n = hist[-1]
        check_workers(d, port, n)
        W.log('workers = "auto": %d workers (%d CPUs online)'
              % (n, len(W.os.sched_getaffinity(0))))
        rc, _ = d.stop(signal.SIGTERM, limit=2.0)
        W.check(rc == 0, "exit code %s after SIGTERM" % rc)


if __name__ == "__main__":
    W.run(main, timeout=120)
