"""The message bus between workers, driven through tests/integration/
bus_probe.c (a module whose line protocol maps onto include/weft/bus.h).

With 2 workers:
  * one client on each worker (clients are opened until both slots hold
    one, as each client asks which slot serves it);
  * publish order: 3000 messages from each worker, interleaved; every
    subscriber (on both workers) gets all 6000 exactly once, each sender's
    in its order;
  * unicast: a message sent to one worker's bus id reaches it alone;
  * names: claimed on one worker, refused on the other, owner seen from
    both, released and claimed again;
  * a full ring: the receiving worker is stopped (SIGSTOP) while 8000
    messages of 200 bytes are published to it; the publisher is told
    (refusals), bus_dropped counts them, and once resumed the receiver
    gets exactly the ones that fitted, in order, without a hole;
  * kill -9 of a worker: the other's peer watch reports it gone, its
    names are free at once, and its replacement comes onto the bus with a
    clean ring: it never sees the messages queued for its predecessor
    (published while it was stopped), only the new ones;
  * a reload: the old worker (draining, with its client still connected)
    and the new one exchange messages both ways;
  * the example of weft-bus(3), extracted from the man page, built and
    run with 2 workers: a line from a client of one worker reaches the
    clients of both;
  * weftctl stats: bus_published / bus_delivered / bus_dropped /
    bus_ring_high_water per worker; weftctl metrics passes promtool when
    promtool is installed.

Synchronisation: every step waits for a reply line or a condition with a
deadline; nothing sleeps for a fixed time.
"""

import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True    # no __pycache__ in the source tree
import weftlib as W  # noqa: E402

DEADLINE = 20.0


def man_example(tmp):
    """weft-bus(3)'s example, extracted as test_module extracts
    weft-protocol(3)'s."""
    from test_module import man_example as extract
    src = os.path.join(tmp, "shout.c")
    with open(src, "w") as f:
        f.write(extract(os.path.join(os.environ.get("WEFT_SRCDIR", "."),
                                     "man", "weft-bus.3")))
    return src


def example(tmp):
    so = W.build_module(tmp, man_example(tmp), "shout")
    port = W.free_port("tcp")
    conf = ('modules = ( "%s" );\nworkers = 2;\ncpu_affinity = false;\n'
            'listeners = ( { name = "shout"; listen = "127.0.0.1:%d";'
            ' protocol = "shout"; } );\n' % (so, port))
    with W.Weftd(conf) as d:
        d.wait_workers(2)
        W.wait_for(lambda: W.tcp_answers(port) or None, DEADLINE,
                   "port %d" % port)
        sock = os.path.join(d.tmpdir, "weft.sock")
        clients = []
        # Clients until both workers hold one, every client accepted
        # (connections_active).
        def accepted():
            act = [w["connections_active"]
                   for w in W.ctl_json(sock, "stats")["workers"]]
            return act if sum(act) == len(clients) else None
        end = time.monotonic() + DEADLINE
        while True:
            clients.append(Client(port))
            act = W.wait_for(accepted, DEADLINE, "clients accepted")
            if min(act) > 0 and len(act) == 2:
                break
            W.check(time.monotonic() < end, "clients on one worker only")
        clients[0].s.sendall(b"hello from one\n")
        lines = {c.line() for c in clients}
        W.check(len(lines) == 1 and lines.pop().endswith(": hello from one"),
                "the example's line did not reach every client")
        W.log("ok   the example of weft-bus(3) reaches %d clients on both "
              "workers" % len(clients))


class Client:
    """A line client of bus_probe."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port),
                                          timeout=W.IO_TIMEOUT)
        self.buf = b""
        self.id, self.slot = None, None

    def line(self, timeout=DEADLINE):
        end = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = end - time.monotonic()
            if left <= 0:
                raise W.TestFailure("no line within %.0f s (have %r)"
                                    % (timeout, self.buf[:200]))
            self.s.settimeout(left)
            try:
                chunk = self.s.recv(1 << 16)
            except socket.timeout:
                continue
            W.check(chunk, "connection closed (have %r)" % self.buf[:200])
            self.buf += chunk
        l, _, self.buf = self.buf.partition(b"\n")
        return l.decode()

    def cmd(self, text):
        """Send a command; its reply, skipping MSG/PEER lines (kept)."""
        self.s.sendall(text.encode() + b"\n")
        while True:
            l = self.line()
            if l.startswith(("OK", "ERR")):
                return l
            self.events.append(l)

    events = None

    def ident(self):
        self.events = []
        r = self.cmd("ID").split()
        self.id, self.slot = int(r[1]), int(r[2])
        return self

    def next_event(self, prefix, timeout=DEADLINE):
        """The next MSG/PEER line starting with prefix (others kept)."""
        for i, l in enumerate(self.events):
            if l.startswith(prefix):
                return self.events.pop(i)
        end = time.monotonic() + timeout
        while True:
            l = self.line(max(0.01, end - time.monotonic()))
            if l.startswith(prefix):
                return l
            self.events.append(l)

    def close(self):
        self.s.close()


def one_per_slot(port, n=2):
    """Clients until each of n slots holds one: {slot: Client}."""
    got, extra = {}, []
    end = time.monotonic() + DEADLINE
    while len(got) < n:
        W.check(time.monotonic() < end, "clients reached only slots %r"
                % sorted(got))
        c = Client(port).ident()
        if c.slot in got:
            extra.append(c)
        else:
            got[c.slot] = c
    for c in extra:
        c.close()
    return got


def read_all(clients, want, timeout=DEADLINE):
    """Lines from several clients at once until want(c) says done."""
    sel = selectors.DefaultSelector()
    for c in clients:
        c.s.setblocking(False)
        sel.register(c.s, selectors.EVENT_READ, c)
    out = {c: [] for c in clients}
    end = time.monotonic() + timeout
    try:
        while not all(want(c, out[c]) for c in clients):
            left = end - time.monotonic()
            W.check(left > 0, "read_all: %r" % {c.slot: len(v)
                                                 for c, v in out.items()})
            for key, _ in sel.select(min(left, 0.5)):
                c = key.data
                try:
                    chunk = c.s.recv(1 << 20)
                except BlockingIOError:
                    continue
                W.check(chunk, "a client was closed")
                c.buf += chunk
                *lines, c.buf = c.buf.split(b"\n")
                out[c].extend(l.decode() for l in lines)
    finally:
        sel.close()
        for c in clients:
            c.s.setblocking(True)
    return out


def ordering(a, b):
    n, batch = 3000, 500
    for c in (a, b):
        W.check(c.cmd("SUB order") == "OK", "SUB")
    # Both publish at once, a batch at a time: a batch must fit in the
    # rings (each worker handles a whole batch in one callback, without
    # draining its own ring meanwhile).
    got = {a: [], b: []}
    for k in range(0, n, batch):
        for c in (a, b):
            c.s.sendall(b"".join(b"PUB order %d:%d\n" % (c.slot, i)
                                 for i in range(k, k + batch)))
        more = read_all([a, b], lambda c, v: sum(l == "OK" for l in v)
                        + sum(l == "OK" for l in got[c]) >= k + batch)
        for c in (a, b):
            got[c] += more[c]
    more = read_all([a, b], lambda c, v: sum(l.startswith("MSG") for l in v)
                    + sum(l.startswith("MSG") for l in got[c]) >= 2 * n)
    for c in (a, b):
        got[c] += more[c]
    for c, lines in got.items():
        oks = sum(l == "OK" for l in lines)
        W.check(oks == n, "slot %d: %d OK replies, want %d" % (c.slot, oks, n))
        seen = {0: [], 1: []}
        for l in lines:
            if l.startswith("MSG"):
                _, frm, topic, body = l.split(" ", 3)
                slot, i = map(int, body.split(":"))
                W.check(int(frm) == {a.slot: a.id, b.slot: b.id}[slot],
                        "from %s for slot %d" % (frm, slot))
                seen[slot].append(i)
        for slot in (0, 1):
            W.check(seen[slot] == list(range(n)),
                    "slot %d got slot %d's messages out of order or not "
                    "once each (%d of %d)" % (c.slot, slot, len(seen[slot]),
                                              n))
    W.log("ok   %d messages from each worker reached both, once each, "
          "in each sender's order" % n)


def unicast(a, b):
    W.check(a.cmd("SEND %d order only-b" % b.id) == "OK", "SEND")
    W.check(b.next_event("MSG") == "MSG %d order only-b" % a.id,
            "unicast to b")
    # a gets nothing of it: the next thing a sees is a later publish.
    W.check(b.cmd("PUB order marker") == "OK", "PUB marker")
    W.check(a.next_event("MSG") == "MSG %d order marker" % b.id,
            "a saw the unicast meant for b")
    b.next_event("MSG %d order marker" % b.id)
    W.check(a.cmd("SEND 999 order x") == "ERR ESRCH", "SEND to no one")
    W.log("ok   unicast reaches its worker alone; an unknown id is ESRCH")


def names(a, b):
    W.check(a.cmd("CLAIM alice") == "OK", "claim on a")
    W.check(b.cmd("CLAIM alice") == "ERR EEXIST", "claim twice")
    W.check(b.cmd("OWNER alice") == "OK %d" % a.id, "owner from b")
    W.check(b.cmd("RELEASE alice") == "ERR ENOENT", "release by b")
    W.check(a.cmd("RELEASE alice") == "OK", "release by a")
    W.check(b.cmd("CLAIM alice") == "OK", "claim after release")
    W.check(a.cmd("OWNER alice") == "OK %d" % b.id, "owner from a")
    W.log("ok   names are unique across workers")


def full_ring(d, a, b):
    """a publishes to a stopped b until b's ring is full."""
    bpid = worker_pid(d, b.slot)
    n, payload = 8000, "y" * 200
    W.check(b.cmd("SUB full") == "OK", "SUB full")
    os.kill(bpid, signal.SIGSTOP)
    try:
        W.wait_for(lambda: (W.read_stat(bpid) or ("", ""))[1] in ("T", "t") or None, 5,
                   "worker %d to stop" % bpid)
        r = a.cmd("BURST %d full %s" % (n, payload)).split()
    finally:
        os.kill(bpid, signal.SIGCONT)
    refused = int(r[2])
    W.check(refused > 0, "no publish refused with the receiver stopped")
    # What fitted in b's ring is delivered, first to last.
    got = read_all([b], lambda c, v: any(l.endswith(" %d" % (n - 1))
                                         for l in v) or
                   sum(l.startswith("MSG") for l in v) >= n - refused,
                   timeout=DEADLINE)[b]
    nums = [int(l.rsplit(" ", 1)[1]) for l in got if l.startswith("MSG")]
    W.check(nums == list(range(len(nums))), "b's messages are not the "
            "first ones in order: %r..." % nums[:5])
    W.check(len(nums) >= n - refused, "b got %d, %d were refused of %d"
            % (len(nums), refused, n))
    st = stats_by_slot(d)
    W.check(st[a.slot]["bus_dropped"] >= n - len(nums),
            "bus_dropped %d < %d lost" % (st[a.slot]["bus_dropped"],
                                          n - len(nums)))
    W.check(st[b.slot]["bus_ring_high_water"] > 0, "high-water mark")
    W.log("ok   full ring: %d of %d refused and counted (bus_dropped %d), "
          "the receiver got the first %d in order"
          % (refused, n, st[a.slot]["bus_dropped"], len(nums)))
    # The rest of this burst's replies (MSG full to a itself) are noise.
    a.events = [l for l in a.events if " full " not in l]


def worker_pid(d, slot):
    for w in W.ctl_json(os.path.join(d.tmpdir, "weft.sock"),
                        "workers")["workers"]:
        if w["slot"] == slot and w["state"] == "running":
            return w["pid"]
    raise W.TestFailure("no running worker in slot %d" % slot)


def stats_by_slot(d):
    st = W.ctl_json(os.path.join(d.tmpdir, "weft.sock"), "stats")
    return {w["slot"]: w for w in st["workers"] if w["state"] == "running"}


def crash(d, port, a, b):
    """kill -9 the worker of b; a hears of it; the replacement is clean."""
    W.check(a.cmd("WATCH") == "OK", "WATCH")
    W.check(a.next_event("PEER %d JOIN" % b.id), "peer b known")
    W.check(b.cmd("CLAIM bob") == "OK", "claim bob")
    bpid = worker_pid(d, b.slot)
    # Stopped, b's worker cannot drain what a publishes now: these stay
    # in the ring to b's endpoint when it dies.
    os.kill(bpid, signal.SIGSTOP)
    W.wait_for(lambda: (W.read_stat(bpid) or ("", ""))[1] in ("T", "t") or None, 5,
               "worker %d to stop" % bpid)
    W.check(a.cmd("BURST 50 order stale") == "OK 50 0", "stale burst")
    os.kill(bpid, signal.SIGKILL)
    W.check(a.next_event("PEER %d LEAVE" % b.id), "peer b gone")
    W.check(a.cmd("OWNER bob") == "OK -1", "bob still owned")
    W.check(a.cmd("CLAIM bob") == "OK", "bob not free")
    W.check(a.cmd("RELEASE bob") == "OK", "release bob")
    b.close()
    W.wait_for(lambda: len(d.workers()) == 2 and
               all(p != bpid for p in d.workers()) or None, DEADLINE,
               "the replacement worker")
    nb = one_per_slot(port)[b.slot]
    W.check(nb.cmd("SUB order") == "OK", "SUB on the replacement")
    joined = a.next_event("PEER %d JOIN" % nb.id)
    W.check(a.cmd("PUB order fresh") == "OK", "PUB fresh")
    first = nb.next_event("MSG")
    W.check(first == "MSG %d order fresh" % a.id,
            "the replacement got %r before the new message: its ring was "
            "not clean" % first)
    W.check(nb.cmd("PUB order back") == "OK", "PUB back")
    a.next_event("MSG %d order back" % nb.id)
    W.log("ok   kill -9: %s, names freed, the replacement (bus id %d) "
          "started clean and talks both ways" % (joined, nb.id))
    return nb


def reload_both_ways(d, a, b):
    sock = os.path.join(d.tmpdir, "weft.sock")
    rc, out, err = W.weftctl(sock, "reload")
    W.check(rc == 0, "reload: %s %s" % (out, err))
    new = one_per_slot_new(d, a, b)
    W.check(new.cmd("SUB order") == "OK", "SUB on the new worker")
    W.check(new.cmd("SLOT %d" % new.slot) == "OK %d" % new.id,
            "the slot's bus id is the new worker's")
    W.check(new.cmd("PUB order from-new") == "OK", "PUB from new")
    for c in (a, b):
        c.next_event("MSG %d order from-new" % new.id)
    W.check(a.cmd("PUB order from-old") == "OK", "PUB from old")
    new.next_event("MSG %d order from-old" % a.id)
    W.log("ok   after a reload the draining and the new workers exchange "
          "messages both ways")


def one_per_slot_new(d, a, b):
    old = {a.id, b.id}
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        c = Client(d.port).ident()
        if c.id not in old:
            return c
        c.close()
    raise W.TestFailure("no client reached a new worker")


def metrics(d):
    sock = os.path.join(d.tmpdir, "weft.sock")
    rc, text, err = W.weftctl(sock, "metrics")
    W.check(rc == 0 and "weft_bus_published_total" in text and
            "weft_bus_ring_high_water" in text, "metrics: %s" % err)
    if shutil.which("promtool"):
        p = subprocess.run(["promtool", "check", "metrics"],
                           input=text.encode(), capture_output=True,
                           timeout=30)
        W.check(p.returncode == 0, "promtool: %s"
                % (p.stdout + p.stderr).decode(errors="replace"))
        W.log("ok   metrics with the bus fields pass promtool")


def main():
    tmp = W.make_tmpdir()
    example(tmp)
    so = W.build_test_module(tmp, "bus_probe")
    port = W.free_port("tcp")
    conf = ('modules = ( "%s" );\n'
            "workers = 2;\n"
            "cpu_affinity = false;\n"
            "shutdown_timeout = 30;\n"
            "bus = { ring_size = 65536; };\n"
            "listeners = (\n"
            '  { name = "probe"; listen = "127.0.0.1:%d";'
            ' protocol = "bus_probe"; }\n'
            ");\n" % (so, port))
    with W.Weftd(conf) as d:
        d.port = port
        d.wait_workers(2)
        W.wait_for(lambda: W.tcp_answers(port) or None, DEADLINE,
                   "port %d" % port)
        cs = one_per_slot(port)
        a, b = cs[0], cs[1]
        W.check(a.id != b.id and a.id >= 0 and b.id >= 0,
                "bus ids %d %d" % (a.id, b.id))
        ordering(a, b)
        unicast(a, b)
        names(a, b)
        full_ring(d, a, b)
        b = crash(d, port, a, b)
        reload_both_ways(d, a, b)
        st = W.ctl_json(os.path.join(d.tmpdir, "weft.sock"), "stats")
        for f in ("bus_published", "bus_delivered", "bus_dropped",
                  "bus_ring_high_water"):
            W.check(f in st["workers"][0], "stats: no %s" % f)
        metrics(d)


if __name__ == "__main__":
    W.run(main)
