"""What a bus callback does to a connection takes effect at once.

The bus runs its callbacks from a prepare watcher; a connection they
change (a write the socket takes only in part, a close) is settled by
another prepare watcher, which libev runs only in the next loop
iteration.  Were the loop to block in between, the rest of such a write
would wait for some other event: the worker's 1 s heartbeat.

weftd with one worker, bus rings of 32 MiB and the bus_probe module
(tests/integration/bus_probe.c, built here with $CC).  A subscriber
subscribes; a publisher sends BURST 200: 200 messages of 60 kB, which the
bus delivers to the subscriber's callback in one pass (12 MB, far more
than its socket takes).  The subscriber then reads everything: with no
wait between bytes longer than 0.5 s (it used to wait 0.9 s, for the
heartbeat), three times.

Synchronisation: the control socket and TCP probes with deadlines; the
only sleep lets weftd go idle after the burst, which is the point.
"""

import os
import socket
import sys
import time

sys.dont_write_bytecode = True    # no __pycache__ in the source tree
import weftlib as W  # noqa: E402

BURST = 200
DATA = b"x" * 60000
TRIALS = 3
MAX_WAIT = 0.5


def line(sock):
    """One reply line."""
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = sock.recv(4096)
        W.check(chunk, "connection closed after %r" % buf)
        buf += chunk
    return buf


def trial(port, pub, n):
    """Subscribe, burst, read it all; the longest wait for bytes."""
    sub = socket.create_connection((W.LOOPBACK, port), timeout=W.IO_TIMEOUT)
    try:
        topic = b"t%d" % n
        sub.sendall(b"SUB %s\n" % topic)
        W.check(line(sub) == b"OK\n", "SUB: no OK")
        pub.sendall(b"BURST %d %s %s\n" % (BURST, topic, DATA))
        got = line(pub)
        W.check(got == b"OK %d 0\n" % BURST, "BURST: %r (a refusal means "
                "the ring was too small)" % got)
        time.sleep(0.1)          # weftd goes idle after its callbacks
        lines, total, longest = 0, 0, 0.0
        t0 = last = time.monotonic()
        while lines < BURST:
            chunk = sub.recv(1 << 20)
            W.check(chunk, "subscriber closed after %d lines" % lines)
            now = time.monotonic()
            longest = max(longest, now - last)
            last = now
            lines += chunk.count(b"\n")
            total += len(chunk)
        W.log("trial %d: %d bytes in %.3f s, longest wait for bytes %.3f s"
              % (n, total, last - t0, longest))
        return longest
    finally:
        sub.close()


def main():
    tmp = W.make_tmpdir()
    so = W.build_test_module(tmp, "bus_probe")
    port = W.free_port()
    conf = ("workers = 1;\n"
            "bus = { ring_size = 33554432; };\n"
            'modules = ("%s");\n'
            "listeners = (\n"
            '  { name = "probe"; listen = "127.0.0.1:%d";'
            ' protocol = "bus_probe"; }\n'
            ");\n" % (so, port))
    with W.Weftd(conf) as d:
        d.wait_workers(1)
        W.wait_for(lambda: W.tcp_answers(port), W.STARTUP_TIMEOUT,
                   "the probe listener")
        pub = socket.create_connection((W.LOOPBACK, port),
                                       timeout=W.IO_TIMEOUT)
        waits = [trial(port, pub, n) for n in range(TRIALS)]
        pub.close()
        W.check(max(waits) < MAX_WAIT, "a subscriber waited %.3f s for the "
                "rest of what a bus callback wrote (limit %.1f s): %r"
                % (max(waits), MAX_WAIT, waits))
        W.log("ok   the rest of each 12 MB burst followed at once "
              "(longest wait %.3f s)" % max(waits))


if __name__ == "__main__":
    W.run(main, timeout=120)
