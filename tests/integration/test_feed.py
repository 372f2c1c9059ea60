"""The feed protocol: one order per topic across workers, no silent loss.

weftd with workers = 2 and four feed listeners on one channel: publishers
with line and with prefixed framing, subscribers with a large max_queue
(16 MiB: they must never fall behind, however slowly this script reads)
and subscribers with a small one (64 KiB).

  1. 50 subscribers, connected until both workers hold some (weftctl
     workers: connections_active per worker), each SUB t/* and gets OK.
  2. Two publishers, one per worker (reconnected until weftctl shows them
     on different workers), line and prefixed framing, send 50,000
     messages each over 4 topics (payload "<publisher>:<counter>").
     Every subscriber gets all 100,000: per topic, seq 1, 2, 3, ... with
     no GAP or RESET line, and each publisher's messages of a topic in
     its order with none missing.  Subscribers on one worker get the same
     bytes, so each distinct stream is parsed once and the others are
     compared with it.
  3. A slow subscriber (small max_queue, small receive buffer) stops
     reading while messages go on until weftctl stats counts
     messages_skipped; it then reads again and gets, per topic, MSG and
     GAP lines that cover every number exactly once (a GAP starts where
     the messages stopped, the messages resume after it), GAP sizes
     adding up to messages_skipped, and the last messages live.  The 50
     others meanwhile got every message, no GAP.
  4. Exact, prefix, overlapping, removed and catch-all subscriptions get
     exactly their messages, each once (the topics are picked to share
     one owner, so the owner's order is the order every worker delivers
     in, and a last marker message proves nothing else is coming); bad
     commands from subscribers and bad frames from both kinds of
     publishers (a newline in a prefixed payload among them) get their
     ERR line, counted in protocol_errors, and the connections go on
     working.
  5. A reload moves the topics to new workers, which number them from 1
     again: a subscriber left on the old generation gets RESET before
     the new numbers, one on the new generation does not.

Synchronisation: only waits for conditions (lines received, weftctl
counts) with deadlines; every socket is non-blocking and read through a
selector with large buffers, so nothing deadlocks on full buffers.
"""

import os
import selectors
import socket
import sys
import time

sys.dont_write_bytecode = True    # no __pycache__ in the source tree
import weftlib as W  # noqa: E402

NSUBS = 50
TOPICS = [b"t/0", b"t/1", b"t/2", b"t/3"]
PER_PUB = 50000
TOTAL = 2 * PER_PUB
PER_TOPIC = TOTAL // len(TOPICS)
BIG_QUEUE = 16 << 20
SMALL_QUEUE = 65536
CHUNK = 1 << 20
# Generous for an ASan build on a loaded 2-core machine.
FLOW_TIMEOUT = 150.0
STALL = 10.0


# --------------------------------------------------------------------------
# Connections

class Conn:
    """A non-blocking connection: bytes read so far (and their newlines),
    bytes still to send."""

    def __init__(self, port, name, rcvbuf=None):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(W.IO_TIMEOUT)
        s.connect((W.LOOPBACK, port))
        s.setblocking(False)
        self.sock = s
        self.name = name
        self.buf = bytearray()
        self.nl = 0
        self.out = memoryview(b"")
        self.reading = True
        self.shut = False     # half-close once out is sent
        self.eof = False      # weftd closed it (only when shut)

    def send(self, data):
        self.out = memoryview(bytes(self.out) + data)

    def read_some(self):
        for _ in range(8):
            try:
                chunk = self.sock.recv(CHUNK)
            except BlockingIOError:
                return
            except ConnectionResetError as e:
                raise W.TestFailure("%s: reset: %s" % (self.name, e))
            if not chunk and self.shut:
                self.eof = True
                self.reading = False
                return
            if not chunk:
                raise W.TestFailure("%s: closed by weftd after %d bytes"
                                    % (self.name, len(self.buf)))
            self.buf += chunk
            self.nl += chunk.count(b"\n")
            if len(chunk) < CHUNK:
                return

    def write_some(self):
        try:
            n = self.sock.send(self.out[:CHUNK])
        except BlockingIOError:
            return
        self.out = self.out[n:]
        if self.shut and not len(self.out):
            self.sock.shutdown(socket.SHUT_WR)

    def shutdown_after(self):
        """Half-close once everything queued is sent."""
        self.shut = True
        if not len(self.out):
            self.sock.shutdown(socket.SHUT_WR)

    def lines(self):
        """The complete lines read, without their newline."""
        end = self.buf.rfind(b"\n")
        return bytes(self.buf[:end]).split(b"\n") if end >= 0 else []

    def take(self, n):
        """Remove the first n lines; return them."""
        out = []
        for _ in range(n):
            i = self.buf.index(b"\n")
            out.append(bytes(self.buf[:i]))
            del self.buf[:i + 1]
            self.nl -= 1
        return out

    def close(self):
        self.sock.close()


def pump(conns, until, timeout, what, stall=None):
    """Read every reading connection and write pending output until
    until() is true; fail after timeout seconds naming what, or after
    stall seconds without a byte read or written."""
    sel = selectors.DefaultSelector()
    regs = {}
    moved = time.monotonic()

    def want(c):
        return (selectors.EVENT_READ if c.reading else 0) | \
            (selectors.EVENT_WRITE if len(c.out) else 0)

    try:
        deadline = time.monotonic() + timeout
        while not until():
            for c in conns:
                ev = want(c)
                if regs.get(c) != ev:
                    if c in regs and regs[c]:
                        sel.unregister(c.sock)
                    if ev:
                        sel.register(c.sock, ev, c)
                    regs[c] = ev
            left = deadline - time.monotonic()
            if left <= 0:
                raise W.TestFailure("timed out after %.0f s waiting for %s"
                                    % (timeout, what))
            events = sel.select(min(left, 0.2))
            for key, mask in events:
                c = key.data
                if mask & selectors.EVENT_READ:
                    c.read_some()
                if mask & selectors.EVENT_WRITE:
                    c.write_some()
            now = time.monotonic()
            if events:
                moved = now
            elif stall is not None and now - moved > stall:
                raise W.TestFailure("nothing moved for %.0f s waiting for %s"
                                    % (stall, what))
    finally:
        sel.close()


def expect_lines(conns, want, timeout=W.IO_TIMEOUT * 2):
    """Each conn gets exactly the lines want[conn] first; they are taken."""
    pump(conns, lambda: all(c.nl >= len(want[c]) for c in conns), timeout,
         "replies: %s" % ", ".join(c.name for c in conns))
    for c in conns:
        got = c.take(len(want[c]))
        W.check(got == want[c], "%s: got %r, expected %r"
                % (c.name, got, want[c]))


# --------------------------------------------------------------------------
# weftd observations

def worker_conns(sock):
    """{slot: connections_active} of the serving generation."""
    ws = W.ctl_json(sock, "workers")
    gen = ws["generation"]
    return {w["slot"]: w["connections_active"] for w in ws["workers"]
            if w["generation"] == gen}


def listener_stats(sock):
    st = W.ctl_json(sock, "stats")
    return {l["name"]: l for l in st["listeners"]}, st


def connect_counted(sock, port, name, before):
    """Connect, and wait until weftd counts it; returns (conn, slot)."""
    c = Conn(port, name)
    total = sum(before.values())
    now = W.wait_for(lambda: (lambda n: n if sum(n.values()) == total + 1
                              else None)(worker_conns(sock)),
                     W.STARTUP_TIMEOUT, "%s to be accepted" % name)
    slot = [s for s in now if now[s] == before.get(s, 0) + 1]
    W.check(len(slot) == 1, "%s: connection counts %r -> %r"
            % (name, before, now))
    return c, slot[0], now


# --------------------------------------------------------------------------
# Checking streams

def check_stream(data, name, first=1, base=0):
    """data: MSG lines of TOPICS, numbered from first on; publisher p's
    counters of topic k are base+k, base+k+4, ... in order, none missing.
    Returns the number of lines."""
    lines = data.split(b"\n")
    W.check(lines[-1] == b"", "%s: stream does not end with a newline"
            % name)
    lines.pop()
    nxt = {t: first for t in TOPICS}
    ctr = {}
    for i, t in enumerate(TOPICS):
        ctr[(t, b"0")] = base + i
        ctr[(t, b"1")] = base + i
    for n, line in enumerate(lines):
        parts = line.split(b" ")
        if len(parts) != 4 or parts[0] != b"MSG":
            raise W.TestFailure("%s: line %d is %r" % (name, n + 1, line[:80]))
        _, topic, seq, payload = parts
        if nxt.get(topic) != int(seq):
            raise W.TestFailure("%s: line %d %r: expected seq %s of %r"
                                % (name, n + 1, line[:80], nxt.get(topic),
                                   topic))
        nxt[topic] += 1
        pub, c = payload.split(b":")[:2]
        if ctr.get((topic, pub)) != int(c):
            raise W.TestFailure("%s: line %d %r: publisher %s's counter "
                                "should be %s" % (name, n + 1, line[:80],
                                                  pub, ctr.get((topic, pub))))
        ctr[(topic, pub)] += 4
    return len(lines)


def check_streams(subs, count, what, first=1, base=0):
    """Every sub holds count MSG lines passing check_stream; each distinct
    stream is parsed once, identical ones compared byte for byte."""
    seen = {}
    t0 = time.monotonic()
    for c in subs:
        W.check(c.nl == count, "%s: %d lines, expected %d (%s)"
                % (c.name, c.nl, count, what))
        data = bytes(c.buf)
        key = (len(data), hash(data))
        if key in seen and seen[key] == data:
            continue
        n = check_stream(data, c.name, first, base)
        W.check(n == count, "%s: %d lines, expected %d" % (c.name, n, count))
        seen[key] = data
        c.buf.clear()
        c.nl = 0
    for c in subs:
        c.buf.clear()
        c.nl = 0
    W.log("ok   %s: %d subscribers x %d messages checked (%d distinct "
          "streams) in %.1f s" % (what, len(subs), count, len(seen),
                                  time.monotonic() - t0))


def line_msgs(pub, n, first, pad=b""):
    """n line-framed messages of publisher 0, counters first.."""
    return b"".join(b"PUB %s 0:%d%s\n" % (TOPICS[i % 4], i, pad)
                    for i in range(first, first + n))


def prefixed_msgs(n, first):
    out = []
    for i in range(first, first + n):
        body = b"%s 1:%d" % (TOPICS[i % 4], i)
        out.append(len(body).to_bytes(4, "big") + body)
    return b"".join(out)


def prefixed(body):
    return len(body).to_bytes(4, "big") + body


# --------------------------------------------------------------------------
# The phases

def phase_subscribers(sock, port):
    subs = []
    for attempt in range(10):
        while len(subs) < NSUBS:
            subs.append(Conn(port, "sub%d" % len(subs)))
        counts = W.wait_for(
            lambda: (lambda n: n if sum(n.values()) == NSUBS else None)(
                worker_conns(sock)),
            W.STARTUP_TIMEOUT, "%d subscribers accepted" % NSUBS)
        if all(counts.get(s, 0) > 0 for s in (0, 1)):
            break
        # All on one worker (the kernel's reuseport hash): try others.
        for c in subs[NSUBS // 2:]:
            c.close()
        del subs[NSUBS // 2:]
        W.wait_for(lambda: sum(worker_conns(sock).values()) == len(subs),
                   W.STARTUP_TIMEOUT, "closed subscribers to go")
    else:
        raise W.TestFailure("subscribers never spread over both workers: "
                            "%r" % counts)
    for c in subs:
        c.send(b"SUB t/*\n")
    expect_lines(subs, {c: [b"OK SUB t/*"] for c in subs})
    W.log("ok   1: %d subscribers over the workers %r, each got OK SUB"
          % (len(subs), counts))
    return subs, counts


def phase_publish(sock, ports, subs, counts):
    pubs = []
    before = counts
    line, slot0, before = connect_counted(sock, ports["pub-line"],
                                          "pub-line", before)
    for attempt in range(40):
        pre, slot1, now = connect_counted(sock, ports["pub-prefixed"],
                                          "pub-prefixed", before)
        if slot1 != slot0:
            break
        pre.close()
        W.wait_for(lambda: worker_conns(sock) == before, W.STARTUP_TIMEOUT,
                   "a publisher connection to go")
    W.log("publishers: line framing on worker %d, prefixed on worker %d%s"
          % (slot0, slot1, "" if slot0 != slot1 else
             " (could not place them on different workers)"))
    pubs = [line, pre]
    line.send(line_msgs(0, PER_PUB, 0))
    pre.send(prefixed_msgs(PER_PUB, 0))
    # The prefixed publisher half-closes right after its burst: what
    # waits for room on the bus when its FIN comes is not lost.
    pre.shutdown_after()
    t0 = time.monotonic()
    sent = []

    def done():
        if not sent and not len(line.out) and not len(pre.out):
            sent.append(time.monotonic() - t0)
        return all(c.nl >= TOTAL for c in subs)
    try:
        pump(subs + pubs, done, FLOW_TIMEOUT, "%d messages at %d "
             "subscribers" % (TOTAL, len(subs)), stall=STALL)
    except W.TestFailure:
        # Say what is wrong with the stream that fell short.
        c = min(subs, key=lambda c: c.nl)
        check_stream(bytes(c.buf[:c.buf.rfind(b"\n") + 1]), c.name)
        raise
    took = time.monotonic() - t0
    W.log("ok   2: %d messages (2 publishers) reached %d subscribers in "
          "%.2f s: %.0f messages/s published, %.0f lines/s delivered; "
          "the kernel took the publishers' bytes after %.2f s"
          % (TOTAL, len(subs), took, TOTAL / took, TOTAL * len(subs) / took,
             sent[0] if sent else took))
    check_streams(subs, TOTAL, "2")
    pump([pre], lambda: pre.eof, W.IO_TIMEOUT, "weftd to close the "
         "half-closed publisher")
    for p in pubs:
        W.check(p.nl == 0, "%s: unexpected replies %r" % (p.name, p.lines()))
    pre.close()
    ls, st = listener_stats(sock)
    W.check(st["totals"]["messages_skipped"] == 0, "messages_skipped %d"
            % st["totals"]["messages_skipped"])
    W.log("ok   2: no message skipped; bus_dropped (full rings, retried) %d,"
          " bus ring high water %d" % (st["totals"]["bus_dropped"],
                                       st["totals"]["bus_ring_high_water"]))
    return line


def check_slow(c, skipped, last):
    """The slow subscriber's lines: per topic, MSG numbers and GAP ranges
    cover every number from PER_TOPIC + 1 to last exactly once; the GAP
    sizes add up to skipped. Returns (gaps, messages)."""
    nxt = {}
    gaps = total = msgs = 0
    for line in c.lines():
        parts = line.split(b" ")
        if parts[0] == b"MSG" and len(parts) == 4:
            t, a, b = parts[1], int(parts[2]), int(parts[2])
            msgs += 1
        elif parts[0] == b"GAP" and len(parts) == 4:
            t, a, b = parts[1], int(parts[2]), int(parts[3])
            gaps += 1
            total += b - a + 1
            W.check(b >= a, "%s: %r" % (c.name, line))
        else:
            raise W.TestFailure("%s: unexpected line %r" % (c.name, line))
        want = nxt.get(t, PER_TOPIC + 1)
        W.check(a == want, "%s: %r, expected the next number of %r to be %d"
                % (c.name, line, t, want))
        nxt[t] = b + 1
    W.check(gaps > 0, "%s: no GAP line" % c.name)
    W.check(total == skipped, "%s: GAP lines cover %d messages, "
            "messages_skipped says %d" % (c.name, total, skipped))
    for t in TOPICS:
        W.check(nxt.get(t) == last + 1, "%s: topic %r ends at %s, expected "
                "%d" % (c.name, t, nxt.get(t, 0) - 1, last))
    return gaps, msgs


def phase_slow(sock, ports, subs, line):
    slow = Conn(ports["sub-slow"], "slow", rcvbuf=4096)
    slow.send(b"SUB t/*\n")
    expect_lines([slow], {slow: [b"OK SUB t/*"]})
    slow.reading = False
    pad = b":" + b"x" * 100
    first = PER_PUB
    rounds = 0
    while True:
        n = 2000
        line.send(line_msgs(0, n, first, pad))
        first += n
        rounds += 1
        pump(subs + [line], lambda: not len(line.out), FLOW_TIMEOUT,
             "a round of slow-phase messages to be sent")
        ls, _ = listener_stats(sock)
        if ls["sub-slow"]["messages_skipped"] > 0:
            break
        W.check(rounds < 50, "no message skipped after %d rounds" % rounds)
    sent = first - PER_PUB
    # Everyone else gets every one of them; the slow one reads again.
    pump(subs + [line], lambda: all(c.nl >= sent for c in subs),
         FLOW_TIMEOUT, "the slow-phase messages at the other subscribers")
    slow.reading = True
    pump([slow] + subs, lambda: b"GAP" in slow.buf, FLOW_TIMEOUT,
         "a GAP line at the slow subscriber")
    # Then live again: a last round reaches everyone, the slow one too.
    tail = 400
    line.send(line_msgs(0, tail, first))
    first += tail
    sent += tail
    last = PER_TOPIC + sent // 4
    ends = [b"MSG %s %d " % (t, last) for t in TOPICS]
    pump([slow, line] + subs,
         lambda: all(c.nl >= sent for c in subs) and
         all(e in slow.buf for e in ends),
         FLOW_TIMEOUT, "the last round at every subscriber")
    # The 50 others: every number, in order, no GAP (the payload has a
    # pad; check_stream looks at publisher and counter only).
    check_streams(subs, sent, "3 (the others)", first=PER_TOPIC + 1,
                  base=PER_PUB)
    ls, _ = listener_stats(sock)
    skipped = ls["sub-slow"]["messages_skipped"]
    gaps, msgs = check_slow(slow, skipped, last)
    W.check(ls["sub"]["messages_skipped"] == 0, "the others skipped %d"
            % ls["sub"]["messages_skipped"])
    W.log("ok   3: slow subscriber: %d messages skipped (%d rounds of "
          "2000 sent), told by %d GAP lines that match; %d messages "
          "received around them; the 50 others skipped nothing"
          % (skipped, rounds, gaps, msgs))
    slow.close()
    return first


def fnv1a(b):
    h = 0xcbf29ce484222325
    for c in b:
        h = ((h ^ c) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def same_owner(base, taken, also=()):
    """base + a suffix such that it (and it + each of also) lands on slot
    0 of 2 (the owner is the worker of slot hash % slots)."""
    for i in range(1000):
        t = b"%s%d" % (base, i)
        if t not in taken and all(fnv1a(t + a) % 2 == 0 for a in (b"",) +
                                  tuple(also)):
            return t
    raise W.TestFailure("no topic for %r" % base)


def phase_match(sock, ports, line, pre):
    t1 = same_owner(b"x/a", (), (b"b",))
    t2 = t1 + b"b"
    t3 = same_owner(b"x/b", (t1, t2))
    t4 = same_owner(b"y/a", (t1, t2, t3))
    mark = same_owner(b"z/end", (t1, t2, t3, t4))
    port = ports["sub"]
    subs = {
        "exact": (Conn(port, "exact"), [b"SUB " + t1]),
        "prefix": (Conn(port, "prefix"), [b"SUB x/*"]),
        "prefix2": (Conn(port, "prefix2"), [b"SUB " + t1 + b"*"]),
        "overlap": (Conn(port, "overlap"), [b"SUB " + t1, b"SUB x/*",
                                            b"SUB x/*"]),
        "moved": (Conn(port, "moved"), [b"SUB " + t3, b"UNSUB " + t3,
                                        b"SUB " + t4]),
        "all": (Conn(port, "all"), [b"SUB *"]),
    }
    for c, cmds in subs.values():
        c.send(b"".join(x + b"\n" for x in cmds + [b"SUB " + mark]))
    expect_lines([c for c, _ in subs.values()],
                 {c: [b"OK " + x[:] for x in cmds + [b"SUB " + mark]]
                  for c, cmds in subs.values()})

    # Bad frames first, on the connections that then publish.
    bad = Conn(port, "bad-commands")
    bad.send(b"FOO\nSUB\nSUB a b\nSUB a*b\nSUB " + b"t" * 201 + b"\n"
             b"UNSUB nope\n" + b"x" * 600 + b"\nSUB ok/1\n")
    pre.send(prefixed(b"a*b x") + prefixed(b"big " + b"x" * 20000) +
             prefixed(b"") + prefixed(t4 + b" two\nlines") +
             prefixed(t4 + b" via-prefixed"))
    line.send(b"HELLO\r\nPUB\nPUB " + b"t" * 201 + b" x\nPUB a*b x\n"
              b"PUB big " + b"x" * 20000 + b"\n")
    expect_lines([bad, pre, line], {
        bad: [b"ERR unknown command", b"ERR missing topic",
              b"ERR bad character in topic", b"ERR bad character in topic",
              b"ERR topic too long", b"ERR not subscribed",
              b"ERR line too long", b"OK SUB ok/1"],
        pre: [b"ERR bad character in topic", b"ERR message too long",
              b"ERR empty topic", b"ERR newline in payload"],
        line: [b"ERR unknown command", b"ERR missing topic",
               b"ERR topic too long", b"ERR bad character in topic",
               b"ERR message too long"],
    })
    # The prefixed publisher's message before the line publisher's: they
    # take different rings to the owner, so wait for it.
    allc = subs["all"][0]
    pump([allc], lambda: allc.nl >= 1, W.IO_TIMEOUT * 2,
         "the prefixed message")
    msgs = [(t4, b"via-prefixed")]
    for rep in range(3):
        for t in (t1, t2, t3, t4):
            msgs.append((t, b"r%d" % rep))
    msgs.append((mark, b"end"))
    line.send(b"".join(b"PUB %s %s\n" % m for m in msgs[1:]))

    seq = {}
    numbered = []
    for t, p in msgs:
        seq[t] = seq.get(t, 0) + 1
        numbered.append(b"MSG %s %d %s" % (t, seq[t], p))

    def only(*topics):
        return [m for m in numbered if m.split(b" ")[1] in topics]
    want = {
        "exact": only(t1, mark),
        "prefix": only(t1, t2, t3, mark),
        "prefix2": only(t1, t2, mark),
        "overlap": only(t1, t2, t3, mark),
        "moved": only(t4, mark),
        "all": only(t1, t2, t3, t4, mark),
    }
    conns = [c for c, _ in subs.values()]
    end = b"MSG %s 1 end" % mark
    try:
        pump(conns + [line], lambda: all(end in c.buf for c in conns),
             W.IO_TIMEOUT * 2, "the marker at every subscriber")
    except W.TestFailure:
        for name, (c, _) in subs.items():
            W.log("%s got %r" % (name, c.lines()))
        raise
    for name, (c, _) in subs.items():
        got = c.lines()
        W.check(got == want[name], "%s: got %r, expected %r"
                % (name, got, want[name]))
        c.take(len(got))
    ls, _ = listener_stats(sock)
    errs = {n: ls[n]["protocol_errors"] for n in ("sub", "pub-line",
                                                  "pub-prefixed")}
    W.check(errs == {"sub": 7, "pub-line": 5, "pub-prefixed": 4},
            "protocol_errors %r" % errs)
    W.log("ok   4: exact, prefix, overlapping, removed and catch-all "
          "subscriptions get exactly their messages; ERR lines for bad "
          "input, protocol_errors %r" % errs)
    bad.close()
    return subs["exact"][0], t1


def phase_reload(sock, ports, old, t1):
    gen = W.ctl_json(sock, "workers")["generation"]
    rc, out, err = W.weftctl(sock, "reload")
    W.check(rc == 0, "weftctl reload: %s %s %s" % (rc, out, err))
    W.wait_for(lambda: W.ctl_json(sock, "workers")["generation"] == gen + 1,
               W.STARTUP_TIMEOUT, "generation %d" % (gen + 1))
    new = Conn(ports["sub"], "new-gen")
    new.send(b"SUB " + t1 + b"\n")
    expect_lines([new], {new: [b"OK SUB " + t1]})
    pub = Conn(ports["pub-line"], "pub-new-gen")
    pub.send(b"PUB %s n1\nPUB %s n2\n" % (t1, t1))
    expect_lines([old, new, pub], {
        old: [b"RESET " + t1, b"MSG %s 1 n1" % t1, b"MSG %s 2 n2" % t1],
        new: [b"MSG %s 1 n1" % t1, b"MSG %s 2 n2" % t1],
        pub: [],
    })
    W.log("ok   5: after a reload the new owner numbers %s from 1; the "
          "subscriber on the old generation got RESET first" % t1.decode())
    for c in (new, pub):
        c.close()


BAD_CONFIGS = (
    ('feed = { channel = "x"; }',
     'feed.role: required: "publish" or "subscribe"'),
    ('feed = { role = "both"; }',
     'feed.role: expected "publish" or "subscribe"'),
    ('feed = { role = "publish"; channel = "a/b"; }',
     "feed.channel: expected letters, digits, '_', '-' and '.' only"),
    ('feed = { role = "publish"; framing = "xml"; }',
     'feed.framing: expected "line" or "prefixed"'),
    ('feed = { role = "subscribe"; framing = "line"; }',
     'feed.framing: only for role "publish"'),
    ('feed = { role = "subscribe"; max_message = 100; }',
     'feed.max_message: only for role "publish"'),
    ('feed = { role = "publish"; max_queue = 100000; }',
     'feed.max_queue: only for role "subscribe"'),
    ('feed = { role = "publish"; max_message = 0; }',
     "feed.max_message: expected an integer 1..524288"),
    ('feed = { role = "publish"; topic = "x"; }',
     "unknown key 'topic' in feed"),
)


def phase_config():
    """weftd -t refuses bad feed groups, each at its line."""
    tmp = W.make_tmpdir()
    lines = ["listeners = ("]
    for i, (group, _) in enumerate(BAD_CONFIGS):
        lines.append('  { name = "l%d"; listen = "127.0.0.1:%d"; '
                     'protocol = "feed"; %s },' % (i, 20000 + i, group))
    lines[-1] = lines[-1].rstrip(",")
    lines.append(");")
    path = os.path.join(tmp, "bad.conf")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    rc, out, err = W.run_weftd(["-t", "-c", path], tmp, name="check")
    W.check(rc != 0, "weftd -t accepted the bad feed groups")
    for i, (_, msg) in enumerate(BAD_CONFIGS):
        want = "bad.conf:%d: listener l%d: %s" % (i + 2, i, msg)
        W.check(want in err, "weftd -t: no %r in:\n%s" % (want, err))
    W.log("ok   0: weftd -t refuses %d bad feed groups, each at its line"
          % len(BAD_CONFIGS))


def main():
    phase_config()
    names = ("pub-line", "pub-prefixed", "sub", "sub-slow")
    ports = {n: W.free_port() for n in names}
    conf = ("workers = 2;\n"
            "listeners = (\n"
            '  { name = "pub-line"; listen = "127.0.0.1:%d";'
            ' protocol = "feed"; feed = { role = "publish"; }; },\n'
            '  { name = "pub-prefixed"; listen = "127.0.0.1:%d";'
            ' protocol = "feed"; feed = { role = "publish";'
            ' framing = "prefixed"; }; },\n'
            '  { name = "sub"; listen = "127.0.0.1:%d"; protocol = "feed";'
            ' feed = { role = "subscribe"; max_queue = %d; }; },\n'
            '  { name = "sub-slow"; listen = "127.0.0.1:%d";'
            ' protocol = "feed"; feed = { role = "subscribe";'
            ' max_queue = %d; }; }\n'
            ");\n" % (ports["pub-line"], ports["pub-prefixed"], ports["sub"],
                      BIG_QUEUE, ports["sub-slow"], SMALL_QUEUE))
    t0 = time.monotonic()
    with W.Weftd(conf) as d:
        d.wait_workers(2)
        sock = os.path.join(d.tmpdir, "weft.sock")
        for n in names:
            W.wait_for(lambda: W.tcp_answers(ports[n]), W.STARTUP_TIMEOUT,
                       "listener %s" % n)
        W.wait_for(lambda: os.path.exists(sock) and
                   all(w["state"] == "running" for w in
                       W.ctl_json(sock, "workers")["workers"]),
                   W.STARTUP_TIMEOUT, "both workers running")
        # tcp_answers' probes must be gone before connections are counted.
        W.wait_for(lambda: sum(worker_conns(sock).values()) == 0,
                   W.STARTUP_TIMEOUT, "the probe connections to close")
        subs, counts = phase_subscribers(sock, ports["sub"])
        line = phase_publish(sock, ports, subs, counts)
        phase_slow(sock, ports, subs, line)
        pre = Conn(ports["pub-prefixed"], "pub-prefixed-2")
        old, t1 = phase_match(sock, ports, line, pre)
        for c in subs:
            c.close()
        phase_reload(sock, ports, old, t1)
    W.log("all phases in %.1f s" % (time.monotonic() - t0))


if __name__ == "__main__":
    W.run(main, timeout=300)
