"""The bus keeps peer reports and messages in one order across a worker's
death and replacement (tests/integration/bus_probe.c drives the bus).

A bus ring outlives the processes on its endpoints: what a killed worker
left in its ring to a peer is followed by what its replacement, which
gets the same bus id, puts there. A subscriber must see

  the dead worker's messages, PEER <id> LEAVE, PEER <id> JOIN, then the
  replacement's messages

never a message of the dead worker after its LEAVE, where it would pass
for one of the replacement (the bug this test was written for: replicated
state, such as chat's, then keeps the dead worker's users for ever).

How: A (worker 0) subscribes to topic t and watches peers; B (worker 1)
joins the bus. Worker 0 is stopped (SIGSTOP) so that nothing is taken
from its rings; B publishes 5 messages to t; worker 1 is killed (SIGKILL)
and replaced; C, on the replacement, joins the bus and publishes 1
message; worker 0 continues (SIGCONT) and A's lines are checked in order.
Every wait is a condition with a deadline.
"""

import os
import signal
import socket
import sys
import time

sys.dont_write_bytecode = True    # no __pycache__ in the source tree
import weftlib as W  # noqa: E402


class Probe:
    """A line client of the bus_probe protocol."""

    def __init__(self, port, timeout=W.IO_TIMEOUT):
        self.s = socket.create_connection((W.LOOPBACK, port), timeout=timeout)
        self.buf = b""

    def line(self, timeout=W.IO_TIMEOUT):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no line within %.1f s" % timeout)
            self.s.settimeout(left)
            data = self.s.recv(65536)
            if not data:
                raise W.TestFailure("probe connection closed")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def cmd(self, text, timeout=W.IO_TIMEOUT):
        self.s.sendall(text.encode() + b"\n")
        return self.line(timeout)

    def close(self):
        self.s.close()


def slot_pids(d):
    ws = W.ctl_json(d.sock, "workers")["workers"]
    return {w["slot"]: w["pid"] for w in ws if w["state"] == "running"}


def probe_on(port, slot, tries=200):
    """A probe connection served by worker `slot` (the kernel spreads
    connections over the workers' sockets: try until one lands there).
    Connections to a stopped worker get no answer: they time out."""
    parked = []
    for _ in range(tries):
        p = Probe(port)
        try:
            r = p.cmd("ID", timeout=0.3).split()
        except socket.timeout:
            parked.append(p)
            continue
        if r[0] == "OK" and int(r[2]) == slot:
            for q in parked:
                q.close()
            return p, int(r[1])
        parked.append(p)
    raise W.TestFailure("no connection reached worker %d in %d tries"
                        % (slot, tries))


def main():
    tmp = W.make_tmpdir()
    so = W.build_test_module(tmp, "bus_probe")
    port = W.free_port()
    sock = os.path.join(tmp, "ctl.sock")
    conf = ('workers = 2;\ncpu_affinity = false;\nmodules = ( "%s" );\n'
            'control = { path = "%s"; };\n'
            'listeners = ( { name = "probe"; listen = "127.0.0.1:%d"; '
            'protocol = "bus_probe"; } );\n' % (so, sock, port))
    with W.Weftd(conf, tmpdir=tmp) as d:
        d.sock = sock
        d.wait_workers(2)
        W.wait_for(lambda: W.tcp_answers(port), W.STARTUP_TIMEOUT,
                   "port %d" % port)
        W.wait_for(lambda: len(slot_pids(d)) == 2, W.STARTUP_TIMEOUT,
                   "2 running workers")
        a, ida = probe_on(port, 0)
        b, idb = probe_on(port, 1)
        W.check(a.cmd("SUB t") == "OK" and a.cmd("WATCH") == "OK",
                "A: SUB/WATCH refused")
        W.check(b.cmd("SUB x") == "OK", "B: SUB refused")
        want = "PEER %d JOIN" % idb
        W.wait_for(lambda: a.line() == want, W.IO_TIMEOUT, "A: " + want)
        W.log("A is bus id %d on worker 0, B bus id %d on worker 1"
              % (ida, idb))

        pids = slot_pids(d)
        os.kill(pids[0], signal.SIGSTOP)
        try:
            W.check(b.cmd("BURST 5 t old") == "OK 5 0", "B: BURST refused")
            os.kill(pids[1], signal.SIGKILL)
            W.wait_for(lambda: slot_pids(d).get(1) not in (None, pids[1]),
                       W.STARTUP_TIMEOUT, "worker 1 replaced")
            c, idc = probe_on(port, 1)
            W.check(c.cmd("SUB y") == "OK", "C: SUB refused")
            W.check(c.cmd("PUB t new") == "OK", "C: PUB refused")
            W.log("worker 1 replaced; C is bus id %d" % idc)
        finally:
            os.kill(pids[0], signal.SIGCONT)

        # LEAVE of B and JOIN of C, whatever ids they have; the messages of
        # each come on the right side of them.
        got = []
        while len(got) < 8:
            try:
                got.append(a.line())
            except socket.timeout:
                break
        W.log("A got: %r" % got)
        old = ["MSG %d t old %d" % (idb, i) for i in range(5)]
        leave, join = "PEER %d LEAVE" % idb, "PEER %d JOIN" % idc
        new = "MSG %d t new" % idc
        ok = (sorted(got) == sorted(old + [leave, join, new]) and
              [l for l in got if l in old] == old and
              got.index(old[-1]) < got.index(leave) and
              got.index(join) < got.index(new))
        W.check(ok, "A's lines after the replacement, in this order:\n  %s"
                "\nexpected the old messages, then %r, and %r before %r"
                % ("\n  ".join(got), leave, join, new))
        for p in (a, b, c):
            p.close()


if __name__ == "__main__":
    W.run(main, timeout=120)
