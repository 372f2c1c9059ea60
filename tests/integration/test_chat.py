"""The chat protocol across 2 workers (protocols/chat/).

A weftd with workers = 2 and three chat listeners on free loopback ports:
"chat" (rate and output limits high, for the load), "lim" (small limits)
and SLOW (max_output = 16 KiB; a name too long to prefix a nick in the
bus's name registry as it is). Which worker serves a client is read from
`weftctl workers` (the worker whose connections_active grew when the
client connected). Before it, a second weftd runs check 2 alone through
the smallest bus rings (16 KiB), where receivers fall behind, records
wait in outboxes and messages are refused with ERR BUSY.

  1. 7 clients on each worker join #load: NAMES, asked on either worker,
     lists the 14 of both workers.
  2. 10 senders (5 per worker) x 1000 messages to #load, 4 more members
     (2 per worker) receiving: every member gets every message exactly
     once, 10,000 each, each sender's in the order the server accepted
     them (OK MSG), which is the order of their sequence numbers unless
     one was refused with ERR BUSY and sent again (counted, logged).
  3. Private messages between the workers, both ways; an unknown nick.
  4. Nicks are unique across the workers, a nick change frees the old one
     and tells the rooms; the same nick on another listener is allowed.
  5. Limits: a line over max_line (ERR TOOLONG, the connection goes on),
     max_rooms, max_room_users, rate (ERR RATE, then OK once tokens are
     back), and a member that never reads, disconnected at max_output
     (connections_aborted) while the room keeps delivering to the others.
  6. kill -9 of worker 1: the members on worker 0 get QUIT for each of its
     users, NAMES drops them, their nicks can be claimed again, the
     survivors keep chatting; a client of the respawned worker joins
     #load, NAMES there lists the survivors (SYNC), and messages cross.

Synchronisation: every wait is a condition polled with a deadline
(W.wait_for, or reading lines until one matches); sockets are read
through a selector so no client's kernel buffer fills meanwhile.
"""

import collections
import os
import selectors
import signal
import socket
import sys
import time

sys.dont_write_bytecode = True    # no __pycache__ in the source tree
import weftlib as W  # noqa: E402

SENDERS = 10
RECEIVERS = 4
MESSAGES = 1000
WINDOW = 32          # MSG commands a sender has sent and not seen answered
WINDOW_SMALL = 256   # the same through the small rings: fill them
# A name too long for "<listener>/<nick>" to fit a bus name: the nicks'
# namespace is then the name's start and a hash of it.
SLOW = "slow-readers-are-disconnected-at-max-output"
LOAD_TIMEOUT = 90.0  # the load under ASan on a busy 2-core machine


class Client:
    """A chat connection: lines in, lines out."""

    def __init__(self, port, rcvbuf=None, timeout=W.IO_TIMEOUT):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.settimeout(timeout)
        self.s.connect((W.LOOPBACK, port))
        self.buf = b""
        self.lines = collections.deque()
        self.eof = False
        self.nick = None
        self.slot = None
        hello = self.next(timeout, "HELLO")
        W.check(hello == "HELLO weft-chat", "greeting %r" % hello)

    def fileno(self):
        return self.s.fileno()

    def feed(self):
        """Read what is there (the socket is readable); False at EOF."""
        try:
            data = self.s.recv(1 << 20)
        except (BlockingIOError, socket.timeout):
            return True
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        parts = (self.buf + data).split(b"\n")
        self.buf = parts.pop()
        self.lines.extend(p.decode("utf-8", "replace") for p in parts)
        return True

    def next(self, timeout=W.IO_TIMEOUT, what="a line"):
        deadline = time.monotonic() + timeout
        while not self.lines:
            left = deadline - time.monotonic()
            if self.eof:
                raise W.TestFailure("%s: connection closed waiting for %s"
                                    % (self.nick, what))
            if left <= 0:
                raise W.TestFailure("%s: no %s within %.1f s"
                                    % (self.nick, what, timeout))
            sel = selectors.DefaultSelector()
            sel.register(self.s, selectors.EVENT_READ)
            ready = sel.select(left)
            sel.close()
            if ready:
                self.feed()
        return self.lines.popleft()

    def until(self, pred, timeout=W.IO_TIMEOUT, what="a line"):
        """Read lines until pred(line); returns (line, lines skipped)."""
        deadline = time.monotonic() + timeout
        skipped = []
        while True:
            line = self.next(max(0.0, deadline - time.monotonic()), what)
            if pred(line):
                return line, skipped
            skipped.append(line)

    def send(self, text):
        self.s.sendall(text.encode() + b"\n")

    def cmd(self, text, timeout=W.IO_TIMEOUT):
        """Send a command; its answer (the next OK or ERR line)."""
        self.send(text)
        line, _ = self.until(lambda l: l.startswith(("OK", "ERR")), timeout,
                             "the answer to %r" % text)
        return line

    def expect(self, text, want):
        got = self.cmd(text)
        W.check(got == want, "%s: %r answered %r, expected %r"
                % (self.nick, text, got, want))

    def names(self, room):
        self.send("NAMES " + room)
        line, _ = self.until(lambda l: l.startswith("NAMES " + room),
                             what="NAMES " + room)
        ok = self.next(what="OK NAMES")
        W.check(ok == "OK NAMES " + room, "after NAMES: %r" % ok)
        return set(line.split()[2:])

    def close(self):
        self.s.close()


# --------------------------------------------------------------------------
# Workers

def workers(sock):
    return [w for w in W.ctl_json(sock, "workers")["workers"]
            if w["state"] == "running"]


def connect(sock, port):
    """A new client and the slot of the worker serving it."""
    c, c.slot = W.connect_on_slot(sock, lambda: Client(port),
                                  "the new client in weftctl workers")
    return c


def place(sock, port, need, parked):
    """Clients until need[slot] of each slot; the others are parked."""
    got = {slot: [] for slot in need}
    for _ in range(200):
        if all(len(got[s]) >= n for s, n in need.items()):
            return got
        c = connect(sock, port)
        if c.slot in got and len(got[c.slot]) < need[c.slot]:
            got[c.slot].append(c)
        else:
            parked.append(c)
    raise W.TestFailure("could not place clients %r: got %r"
                        % (need, {s: len(v) for s, v in got.items()}))


def name(c, nick):
    c.nick = nick
    c.expect("NICK " + nick, "OK NICK " + nick)


def wait_names(c, room, want, what, timeout=W.IO_TIMEOUT):
    last = [None]

    def same():
        last[0] = c.names(room)
        return last[0] == set(want)
    try:
        W.wait_for(same, timeout, what)
    except W.TestFailure:
        raise W.TestFailure("%s: NAMES %s from %s (worker %s) is %r, "
                            "expected %r" % (what, room, c.nick, c.slot,
                                             sorted(last[0] or ()),
                                             sorted(want)))


def listener_stats(sock, name_):
    st = W.ctl_json(sock, "stats")
    for ln in st["listeners"]:
        if ln["name"] == name_:
            return ln
    raise W.TestFailure("no listener %r in stats" % name_)


# --------------------------------------------------------------------------
# 1 and 4: both workers in one room

def test_room(sock, port, parked):
    per = (SENDERS + RECEIVERS) // 2
    got = place(sock, port, {0: per, 1: per}, parked)
    senders, receivers = [], []
    for slot in (0, 1):
        for i, c in enumerate(got[slot]):
            if i < SENDERS // 2:
                name(c, "s%d" % len(senders))
                senders.append(c)
            else:
                name(c, "r%d" % len(receivers))
                receivers.append(c)
            c.expect("JOIN #load", "OK JOIN #load")
    members = senders + receivers
    nicks = {c.nick for c in members}
    for slot in (0, 1):
        asker = got[slot][0]
        wait_names(asker, "#load", nicks, "NAMES #load on worker %d" % slot)
    on = {slot: sorted(c.nick for c in got[slot]) for slot in (0, 1)}
    W.log("1+4: #load has %d members, worker 0: %s, worker 1: %s; NAMES "
          "on each worker lists all" % (len(members), on[0], on[1]))
    active = W.active_by_slot(sock)
    W.check(on[0] and on[1] and min(active.values()) >= per,
            "chat users per worker %r, connections_active %r" % (on, active))
    return senders, receivers


# --------------------------------------------------------------------------
# 2: the load

class Flow:
    """A sender's messages: what to send, what is waiting for an answer,
    the order the server accepted them in."""

    def __init__(self, c):
        self.c = c
        self.todo = collections.deque(range(MESSAGES))
        self.inflight = collections.deque()
        self.accepted = []
        self.busy = 0
        self.out = b""


def load_send(flows, window):
    """Each sender sends up to its window (the sockets are non-blocking:
    what the kernel does not take now waits in f.out)."""
    for f in flows.values():
        batch = []
        while f.todo and len(f.inflight) < window:
            seq = f.todo.popleft()
            f.inflight.append(seq)
            batch.append("MSG #load %s %d\n" % (f.c.nick, seq))
        f.out += "".join(batch).encode()
        if f.out:
            try:
                f.out = f.out[f.c.s.send(f.out):]
            except BlockingIOError:
                pass


def load_line(c, line, flows, seen, counts):
    f = flows.get(c.nick)
    if line.startswith("MSG #load "):
        parts = line.split(" ")
        sender, seq = parts[2], int(parts[4])
        W.check(parts[3] == sender, "%s got %r" % (c.nick, line))
        seen[c.nick][sender].append(seq)
        counts[c.nick] += 1
    elif f is not None and line == "OK MSG":
        f.accepted.append(f.inflight.popleft())
    elif f is not None and line == "ERR BUSY":
        f.busy += 1
        f.todo.appendleft(f.inflight.popleft())
    elif not line.startswith("JOIN #load "):   # from the setup
        raise W.TestFailure("%s: unexpected %r during the load"
                            % (c.nick, line))


def test_load(sock, senders, receivers, window=WINDOW):
    members = senders + receivers
    flows = {c.nick: Flow(c) for c in senders}
    seen = {c.nick: collections.defaultdict(list) for c in members}
    counts = {c.nick: 0 for c in members}
    total = SENDERS * MESSAGES
    sel = selectors.DefaultSelector()
    for c in members:
        c.s.setblocking(False)
        sel.register(c.s, selectors.EVENT_READ, c)
    t0 = time.monotonic()
    deadline = t0 + LOAD_TIMEOUT
    try:
        while (any(f.todo or f.inflight for f in flows.values()) or
               any(n < total for n in counts.values())):
            W.check(time.monotonic() < deadline, "load not done after "
                    "%.0f s: received %r, accepted %r" % (
                        LOAD_TIMEOUT, counts,
                        {n: len(f.accepted) for n, f in flows.items()}))
            load_send(flows, window)
            for key, _ in sel.select(0.5):
                c = key.data
                W.check(c.feed(), "%s: connection closed during the load"
                        % c.nick)
                while c.lines:
                    load_line(c, c.lines.popleft(), flows, seen, counts)
    finally:
        sel.close()
        for c in members:
            c.s.settimeout(W.IO_TIMEOUT)
    elapsed = time.monotonic() - t0
    busy = sum(f.busy for f in flows.values())
    dropped = W.ctl_json(sock, "stats")["totals"]["bus_dropped"]
    in_order = 0
    for c in members:
        for nick, f in flows.items():
            got = seen[c.nick][nick]
            W.check(got == f.accepted, "%s received %d messages of %s, "
                    "not exactly the %d accepted in their order (first "
                    "difference at %d)" % (
                        c.nick, len(got), nick, len(f.accepted),
                        W.first_difference(got, f.accepted)))
            in_order += f.accepted == list(range(MESSAGES))
    W.log("2: %d senders x %d messages, %d members each received %d, "
          "exactly once and in order, in %.2f s (%.0f deliveries/s); "
          "window %d; %d records found a full ring (bus_dropped), %d "
          "messages refused with ERR BUSY and sent again; %d of %d "
          "sender/member pairs in numeric order"
          % (SENDERS, MESSAGES, len(members), total, elapsed,
             total * len(members) / elapsed, window, dropped, busy,
             in_order, len(members) * SENDERS))


# --------------------------------------------------------------------------
# 3: private messages

def test_priv(senders):
    a = next(c for c in senders if c.slot == 0)
    b = next(c for c in senders if c.slot == 1)
    for x, y in ((a, b), (b, a)):
        x.expect("MSG %s psst from %s" % (y.nick, x.nick), "OK MSG")
        want = "PRIV %s psst from %s" % (x.nick, x.nick)
        y.until(lambda l: l == want, what=want)
    a.expect("MSG nobody hello", "ERR NOSUCHNICK nobody")
    W.log("3: PRIV %s (worker 0) <-> %s (worker 1); ERR NOSUCHNICK"
          % (a.nick, b.nick))


# --------------------------------------------------------------------------
# 4: nicks

def test_nicks(sock, port, lim_port, parked, watcher):
    got = place(sock, port, {0: 1, 1: 1}, parked)
    x, y = got[0][0], got[1][0]
    name(x, "bob")
    y.nick = "y"
    y.expect("NICK bob", "ERR NICKINUSE bob")
    x.expect("JOIN #load", "OK JOIN #load")
    watcher.until(lambda l: l == "JOIN #load bob", what="JOIN #load bob")
    x.expect("NICK bobby", "OK NICK bobby")
    x.nick = "bobby"
    watcher.until(lambda l: l == "NICK bob bobby", what="NICK bob bobby")
    name(y, "bob")
    y.expect("NICK bobby", "ERR NICKINUSE bobby")
    other = Client(lim_port)
    name(other, "bobby")
    other.close()
    x.expect("PART #load", "OK PART #load")
    watcher.until(lambda l: l == "PART #load bobby", what="PART #load bobby")
    W.log("4: bob on worker 0, ERR NICKINUSE on worker 1; bob -> bobby "
          "told to #load; bob free again and taken on worker 1; bobby "
          "allowed on another listener")
    return x, y


# --------------------------------------------------------------------------
# 5: limits

def test_too_long(c):
    c.send("MSG #a " + "x" * 200)
    line = c.next(what="ERR TOOLONG")
    W.check(line == "ERR TOOLONG", "a 207-byte line: %r" % line)
    # A long line in pieces, a command right after it in the same send.
    c.s.sendall(b"JOIN #" + b"y" * 150)
    c.s.sendall(b"y" * 150)
    c.s.sendall(b"zz\r\nNAMES #a\r\n")
    W.check(c.next(what="ERR TOOLONG") == "ERR TOOLONG", "split long line")
    W.check(c.next().startswith("NAMES #a"), "NAMES after a long line")
    W.check(c.next() == "OK NAMES #a", "OK NAMES after a long line")
    # max_line (100) itself is fine, CR not counted.
    text = "MSG #a " + "t" * (100 - len("MSG #a "))
    c.expect(text + "\r", "ERR NOTINROOM #a")


def test_limits(sock, lim_port, parked):
    a = Client(lim_port)
    name(a, "l1")
    test_too_long(a)
    a.expect("JOIN #a", "OK JOIN #a")
    a.expect("JOIN #b", "OK JOIN #b")
    a.expect("JOIN #c", "ERR TOOMANYROOMS #c")
    a.expect("PART #b", "OK PART #b")
    others = []
    for i in (2, 3, 4):
        c = Client(lim_port)
        name(c, "l%d" % i)
        others.append(c)
    for c in others[:2]:
        c.expect("JOIN #a", "OK JOIN #a")
    # Once l4's worker knows #a has its 3 members, a 4th is refused.
    wait_names(others[2], "#a", {"l1", "l2", "l3"}, "#a full")
    others[2].expect("JOIN #a", "ERR ROOMFULL #a")
    # rate 5, burst 3: 3 at once, then ERR RATE, then OK again.
    a.s.sendall(b"MSG #a m1\nMSG #a m2\nMSG #a m3\nMSG #a m4\n")
    answers = [a.until(lambda l: l.startswith(("OK", "ERR")))[0]
               for _ in range(4)]
    W.check(answers == ["OK MSG"] * 3 + ["ERR RATE"],
            "burst of 4: %r" % answers)
    W.wait_for(lambda: a.cmd("MSG #a again") == "OK MSG", 5.0,
               "a token again after ERR RATE")
    st = listener_stats(sock, "lim")
    W.check(st["protocol_errors"] >= 3 and st["requests"] >= 15,
            "lim: requests %d, protocol_errors %d"
            % (st["requests"], st["protocol_errors"]))
    W.log("5: ERR TOOLONG (whole and in pieces, the connection goes on), "
          "ERR TOOMANYROOMS, ERR ROOMFULL, ERR RATE then OK; lim: %d "
          "requests, %d protocol errors" % (st["requests"],
                                              st["protocol_errors"]))
    for c in [a] + others:
        c.close()


def flood_cap(size):
    """Messages of size bytes it may take to fill the kernel's buffers
    (the server's send buffer grows up to tcp_wmem's maximum) and then
    max_output: three times that maximum, and 2 MiB more."""
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as f:
            wmem = int(f.read().split()[2])
    except (OSError, ValueError, IndexError):
        wmem = 16 << 20
    return (3 * wmem + (2 << 20)) // size


def test_slow_reader(sock, slow_port, parked):
    slow = Client(slow_port, rcvbuf=4096)
    name(slow, "slowpoke")
    slow.expect("JOIN #flood", "OK JOIN #flood")
    reader, flooder = connect(sock, slow_port), Client(slow_port)
    for c, n in ((reader, "reader"), (flooder, "flooder")):
        name(c, n)
        c.expect("JOIN #flood", "OK JOIN #flood")
    # The long listener name's namespace is the same in both workers.
    other = place(sock, slow_port, {1 - reader.slot: 1}, parked)
    other[1 - reader.slot][0].expect("NICK reader", "ERR NICKINUSE reader")
    wait_names(flooder, "#flood", {"slowpoke", "reader", "flooder"},
               "#flood")
    wait_names(reader, "#flood", {"slowpoke", "reader", "flooder"},
               "#flood")
    aborted0 = listener_stats(sock, SLOW)["connections_aborted"]
    body = "x" * 3000
    sent = acked = 0
    got = {"reader": [], "flooder": []}
    aborted_at = None
    next_check = 32
    cap = flood_cap(len(body))
    sel = selectors.DefaultSelector()
    for c in (reader, flooder):
        sel.register(c.s, selectors.EVENT_READ, c)
    deadline = time.monotonic() + 60.0
    try:
        # Flood until the slow member is aborted, then 20 more.
        while aborted_at is None or acked < aborted_at + 20 or \
                any(len(v) < acked for v in got.values()):
            W.check(time.monotonic() < deadline, "slow reader: sent %d, "
                    "acked %d, got %r, aborted at %r"
                    % (sent, acked, {k: len(v) for k, v in got.items()},
                       aborted_at))
            if sent - acked < 8 and (aborted_at is None or
                                     sent < aborted_at + 20):
                flooder.send("MSG #flood %d %s" % (sent, body))
                sent += 1
            for key, _ in sel.select(0.2):
                c = key.data
                W.check(c.feed(), "%s closed" % c.nick)
                while c.lines:
                    line = c.lines.popleft()
                    if line.startswith("MSG #flood flooder "):
                        got[c.nick].append(int(line.split()[3]))
                    elif c is flooder and line == "OK MSG":
                        acked += 1
                    elif line.startswith("QUIT slowpoke"):
                        pass
                    else:
                        raise W.TestFailure("%s: %r" % (c.nick, line))
            if aborted_at is None and acked >= next_check:
                next_check = acked + 32
                n = listener_stats(sock, SLOW)["connections_aborted"]
                if n > aborted0:
                    aborted_at = acked
            W.check(aborted_at is not None or acked <= cap, "slowpoke not "
                    "aborted after %d messages of 3 KB" % cap)
    finally:
        sel.close()
    for c in (reader, flooder):
        W.check(got[c.nick] == list(range(acked)), "%s received %d of %d "
                "messages, or not in order" % (c.nick, len(got[c.nick]),
                                               acked))
    reader.send("NAMES #flood")
    line, _ = reader.until(lambda l: l.startswith("NAMES #flood"))
    W.check(set(line.split()[2:]) == {"reader", "flooder"},
            "NAMES #flood after the abort: %r" % line)
    W.log("5: slowpoke (never reads, max_output 16 KiB) aborted after %d "
          "messages of 3 KB (connections_aborted counted); the room got "
          "all %d" % (aborted_at, acked))
    for c in (slow, reader, flooder):
        c.close()


# --------------------------------------------------------------------------
# 6: kill -9

def test_kill(d, sock, port, senders, receivers, parked):
    members = senders + receivers
    victims = {c.nick for c in members if c.slot == 1}
    survivors = [c for c in members if c.slot == 0]
    pid = next(w["pid"] for w in workers(sock) if w["slot"] == 1)
    os.kill(pid, signal.SIGKILL)
    W.log("6: killed worker 1 (pid %d), holding %s" % (pid, sorted(victims)))
    for c in survivors:
        gone = set()
        while gone != victims:
            line, _ = c.until(lambda l: l.startswith("QUIT "),
                              what="QUIT of %s" % sorted(victims - gone))
            parts = line.split(" ", 2)
            W.check(parts[1] in victims and parts[2] == "worker gone",
                    "%s: %r" % (c.nick, line))
            gone.add(parts[1])
    alive = {c.nick for c in survivors}
    wait_names(survivors[0], "#load", alive, "NAMES without worker 1")
    taker = Client(port)
    nick = sorted(victims)[0]
    taker.nick = "taker"
    W.wait_for(lambda: taker.cmd("NICK " + nick) == "OK NICK " + nick,
               10.0, "%s free again" % nick)
    a, b = survivors[0], survivors[-1]
    a.expect("MSG #load still here", "OK MSG")
    for c in (a, b):
        want = "MSG #load %s still here" % a.nick
        c.until(lambda l: l == want, what=want)
    W.log("6: survivors got QUIT <nick> worker gone for all %d, NAMES "
          "lists the %d survivors, %s claimed again, survivors chat"
          % (len(victims), len(alive), nick))

    W.wait_for(lambda: any(w["slot"] == 1 and w["pid"] != pid
                           for w in workers(sock)), W.STARTUP_TIMEOUT,
               "worker 1 respawned")
    new = place(sock, port, {1: 1}, parked)[1][0]
    name(new, "newbie")
    new.expect("JOIN #load", "OK JOIN #load")
    wait_names(new, "#load", alive | {"newbie"}, "NAMES on the new worker")
    a.until(lambda l: l == "JOIN #load newbie", what="JOIN #load newbie")
    a.expect("MSG #load welcome", "OK MSG")
    new.until(lambda l: l == "MSG #load %s welcome" % a.nick,
              what="welcome")
    new.expect("MSG #load thanks", "OK MSG")
    a.until(lambda l: l == "MSG #load newbie thanks", what="thanks")
    W.log("6: worker 1 respawned; newbie there sees the %d survivors "
          "in NAMES (SYNC) and messages cross both ways" % len(alive))
    taker.close()
    new.close()


def config(sock, ports, ring=None):
    return ("workers = 2;\ncpu_affinity = false;\n"
            "control = { path = \"%s\"; };\n" % sock +
            ("bus = { ring_size = %d; };\n" % ring if ring else "") +
            "listeners = (\n"
            "  { name = \"chat\"; listen = \"127.0.0.1:%d\"; "
            "protocol = \"chat\";\n"
            "    chat = { rate = 1000000; burst = 1000000;\n"
            "             max_output = 16777216; }; },\n"
            "  { name = \"lim\"; listen = \"127.0.0.1:%d\"; "
            "protocol = \"chat\";\n"
            "    chat = { max_line = 100; max_rooms = 2; "
            "max_room_users = 3;\n"
            "             rate = 5; burst = 3; }; },\n"
            "  { name = \"%s\"; listen = \"127.0.0.1:%d\"; "
            "protocol = \"chat\";\n"
            "    chat = { max_output = 16384; max_line = 4096;\n"
            "             rate = 100000; burst = 100000; }; }\n"
            ");\n" % (ports[0], ports[1], SLOW, ports[2]))


def start(tmp, name_, ring=None):
    sock = os.path.join(tmp, name_ + ".sock")
    ports = (W.free_port(), W.free_port(), W.free_port())
    d = W.Weftd(config(sock, ports, ring), tmpdir=tmp, name=name_).start()
    d.wait_workers(2)
    W.wait_for(lambda: len(workers(sock)) == 2 and W.tcp_answers(ports[0]),
               W.STARTUP_TIMEOUT, "2 workers")
    return d, sock, ports


def main():
    tmp = W.make_tmpdir()
    parked = []
    t0 = time.monotonic()
    # 2 again, through the smallest bus rings: receivers fall behind,
    # records wait in outboxes, messages are refused with ERR BUSY.
    d, sock, ports = start(tmp, "small", ring=16384)
    with d:
        W.log("2 through 16 KiB bus rings:")
        senders, receivers = test_room(sock, ports[0], parked)
        test_load(sock, senders, receivers, WINDOW_SMALL)
    d, sock, (port, lim_port, slow_port) = start(tmp, "weftd")
    with d:
        senders, receivers = test_room(sock, port, parked)
        test_load(sock, senders, receivers)
        test_priv(senders)
        x, y = test_nicks(sock, port, lim_port, parked, receivers[0])
        test_limits(sock, lim_port, parked)
        test_slow_reader(sock, slow_port, parked)
        test_kill(d, sock, port, senders, receivers, parked)
        for c in parked + [x, y]:
            c.close()
    W.log("all checks in %.1f s" % (time.monotonic() - t0))


if __name__ == "__main__":
    W.run(main, timeout=240)
