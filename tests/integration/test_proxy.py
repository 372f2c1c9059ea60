"""The TCP proxy protocol, against echo upstreams in the same weftd.

One weftd (2 workers) runs two echo listeners and several proxy listeners
pointing at them, at upstreams that are down (free ports, nothing
listening) and at a "black hole" (a listening socket of this script whose
accept queue is full, so that SYNs are dropped and a connect hangs).

  (a) 64 MiB through the proxy to echo and back, sha256 equal, while this
      client reads slowly (64 KiB reads with a pause between them); the
      workers' RSS grows by less than 16 MiB (backpressure works end to
      end); then SHUT_WR and the proxy passes the EOF back;
  (b) upstreams (down, echo1, echo2): 20 connections all work, and both
      live upstreams get some of them (counted in /proc/net/tcp);
  (c) every upstream down: the client sees a clean close (b"" without
      sending; b"" or a reset after sending), within a few seconds;
  (d) half-close: send then SHUT_WR, the whole echo and then EOF come
      back, also when the bytes and the FIN are sent before the upstream
      is connected; the upstream connections are closed afterwards; a
      client that resets its connection gets its upstream closed too;
  (e) idle_timeout = 300 on a proxy listener closes an idle client, and
      the proxy closes its upstream connection;
  (f) connect_timeout: a hanging upstream is skipped after the timeout;
      a client closed (idle timeout) while the proxy connects, with the
      attempt then failing or succeeding: nothing leaks, nothing crashes
      (ASan builds), the late upstream connection is closed;
  (g) weftd -t refuses bad proxy settings.

Workers: 2, and the RSS bound is on the sum of both. A proxied connection
and the echo connection behind it are accepted by whichever worker the
kernel's SO_REUSEPORT hash picks, so the bytes of one transfer may be
buffered in either process; the sum is what must stay bounded.

Synchronisation: wait_for() polls (/proc/net/tcp, worker list) with
deadlines, sockets have timeouts. The only sleeps are the pauses of the
slow reader in (a), which throttle the transfer on purpose.
"""

import hashlib
import os
import socket
import struct
import sys
import threading
import time

sys.dont_write_bytecode = True    # no __pycache__ in the source tree
import weftlib as W  # noqa: E402

BIG = 64 << 20
BLOCK = 1 << 20
READ_SIZE = 64 << 10
READ_PAUSE = 0.002          # s between reads: at most ~30 MB/s
RSS_GROWTH_MAX = 16 << 10   # kB
RR_CONNS = 20
IDLE_MS = 300

# ASan keeps freed blocks in a quarantine (256 MiB by default) before
# reusing them, so a 64 MiB transfer through per-write chunks would show
# up as RSS growth of the sanitizer, not of weft. A small quarantine keeps
# the measurement about weft's buffers. Non-ASan builds ignore this, and a
# value already in ASAN_OPTIONS comes later and wins.
os.environ["ASAN_OPTIONS"] = "quarantine_size_mb=4:" + \
    os.environ.get("ASAN_OPTIONS", "")

TCP_STATES = {"ESTABLISHED": "01", "SYN_SENT": "02", "CLOSE_WAIT": "08"}


# --------------------------------------------------------------------------
# Helpers

def tcp_sockets(local_port=None, remote_port=None, states=()):
    """Count IPv4 TCP sockets on 127.0.0.1 by local or remote port and
    state names (TCP_STATES), from /proc/net/tcp."""
    want = {TCP_STATES[s] for s in states}
    n = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if len(fields) < 4 or fields[3] not in want:
                continue
            lip, lport = fields[1].split(":")
            rip, rport = fields[2].split(":")
            if local_port is not None and (lip != "0100007F" or
                                           int(lport, 16) != local_port):
                continue
            if remote_port is not None and (rip != "0100007F" or
                                            int(rport, 16) != remote_port):
                continue
            n += 1
    return n


def served_by(port):
    """Connections accepted on port and still open on the server side."""
    return tcp_sockets(local_port=port, states=("ESTABLISHED", "CLOSE_WAIT"))


def wait_closed(port, what):
    W.wait_for(lambda: served_by(port) == 0, W.IO_TIMEOUT,
               "%s: no open connection left on port %d" % (what, port))


def workers_rss_kb(d):
    total = 0
    for pid in d.workers():
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def connect(port):
    return socket.create_connection((W.LOOPBACK, port), timeout=W.IO_TIMEOUT)


def read_to_eof(s, limit):
    """Read until EOF (at most limit bytes, or fail); returns the bytes."""
    got = bytearray()
    while True:
        chunk = s.recv(262144)
        if not chunk:
            return bytes(got)
        got += chunk
        W.check(len(got) <= limit, "received %d bytes, more than the %d "
                "sent" % (len(got), limit))


def send_then_shut(s, blocks, errors, digest=None):
    """Thread body: send the blocks, then SHUT_WR; failures into errors."""
    try:
        for b in blocks:
            s.sendall(b)
            if digest is not None:
                digest.update(b)
        s.shutdown(socket.SHUT_WR)
    except OSError as e:
        errors.append(e)


def start_sender(s, blocks, digest=None):
    errors = []
    t = threading.Thread(target=send_then_shut, args=(s, blocks, errors,
                                                      digest), daemon=True)
    t.start()
    return t, errors


def join_sender(t, errors, what):
    t.join(W.IO_TIMEOUT)
    W.check(not t.is_alive(), "%s: sender still blocked" % what)
    W.check(not errors, "%s: sending failed: %r" % (what, errors))


def expect_clean_close(s, deadline, sent):
    """recv must end (b"", or a reset when we had sent bytes that the
    proxy never read) within deadline s; returns the elapsed time."""
    s.settimeout(deadline)
    t0 = time.monotonic()
    try:
        r = s.recv(1)
    except socket.timeout:
        raise W.TestFailure("client not closed within %.1f s" % deadline)
    except ConnectionResetError:
        W.check(sent, "reset, expected a clean close (nothing was sent)")
        r = b""
    W.check(r == b"", "got %r, expected the connection to close" % r)
    return time.monotonic() - t0


# --------------------------------------------------------------------------
# Scenarios

def scenario_big_slow(d, port, upstream, rng):
    """(a) 64 MiB through the proxy, read slowly, RSS bounded."""
    W.echo_roundtrip(port, rng.randbytes(4 << 20), timeout=30.0)  # warm up
    wait_closed(upstream, "warm-up")
    base = workers_rss_kb(d)
    blocks = [rng.randbytes(BLOCK) for _ in range(BIG // BLOCK)]
    sent_hash, got_hash = hashlib.sha256(), hashlib.sha256()
    s = connect(port)
    t, errors = start_sender(s, blocks, sent_hash)
    got, reads, peak = 0, 0, base
    t0 = time.monotonic()
    while got < BIG:
        chunk = s.recv(min(READ_SIZE, BIG - got))
        W.check(chunk, "EOF after %d of %d bytes" % (got, BIG))
        got_hash.update(chunk)
        got += len(chunk)
        reads += 1
        if reads % 16 == 0:
            peak = max(peak, workers_rss_kb(d))
        time.sleep(READ_PAUSE)      # the slow reader: throttling, not sync
    elapsed = time.monotonic() - t0
    join_sender(t, errors, "64 MiB")
    W.check(s.recv(1) == b"", "no EOF after the 64 MiB echo and SHUT_WR")
    s.close()
    W.check(sent_hash.digest() == got_hash.digest(),
            "sha256 of the 64 MiB echoed differs from what was sent")
    W.log("(a) 64 MiB echoed through the proxy in %.2f s (%.1f MB/s), "
          "sha256 equal, then EOF; workers' RSS %d kB before, peak %d kB "
          "(+%d kB)" % (elapsed, BIG / elapsed / 1e6, base, peak,
                        peak - base))
    W.check(peak - base < RSS_GROWTH_MAX, "workers' RSS grew by %d kB "
            "during the transfer (limit %d kB): no backpressure?"
            % (peak - base, RSS_GROWTH_MAX))
    wait_closed(upstream, "(a)")


def scenario_round_robin(port, e1, e2, rng):
    """(b) the down upstream is skipped; both live ones serve."""
    socks = []
    try:
        for i in range(RR_CONNS):
            s = connect(port)
            socks.append(s)
            try:
                W.echo_exchange(s, rng.randbytes(1000 + i))
            except W.EchoError as e:
                raise W.TestFailure("(b) connection %d/%d: %s"
                                    % (i + 1, RR_CONNS, e))
        counts = W.wait_for(
            lambda: (lambda a, b: (a, b) if a + b == RR_CONNS else None)(
                served_by(e1), served_by(e2)),
            W.IO_TIMEOUT, "%d upstream connections" % RR_CONNS)
    finally:
        for s in socks:
            s.close()
    W.log("(b) %d connections through (down, echo1, echo2): %d on echo1, "
          "%d on echo2" % (RR_CONNS, counts[0], counts[1]))
    W.check(counts[0] > 0 and counts[1] > 0, "round robin did not use "
            "both live upstreams: %r" % (counts,))
    wait_closed(e1, "(b)")
    wait_closed(e2, "(b)")


def scenario_all_down(port):
    """(c) every upstream down: a clean close, not a hang."""
    worst = 0.0
    for i in range(6):
        s = connect(port)
        sent = i % 2 == 1
        if sent:
            try:
                s.sendall(b"lost bytes")
            except (BrokenPipeError, ConnectionResetError):
                pass
        worst = max(worst, expect_clean_close(s, 5.0, sent))
        s.close()
    W.log("(c) every upstream down: 6 clients closed, slowest in %.3f s"
          % worst)


def scenario_half_close(port, upstream, rng):
    """(d) SHUT_WR from the client: full echo, then EOF."""
    data = rng.randbytes(1 << 20)
    s = connect(port)
    t, errors = start_sender(s, [data])
    got = read_to_eof(s, len(data))
    join_sender(t, errors, "(d)")
    s.close()
    W.check(got == data, "(d) 1 MiB then SHUT_WR: %d bytes back, first "
            "difference at %d" % (len(got), W.first_difference(got, data)))
    # Bytes and FIN sent at once, before the upstream can be connected.
    for i in range(10):
        small = rng.randbytes(1 + i * 100)
        s = connect(port)
        s.sendall(small)
        s.shutdown(socket.SHUT_WR)
        got = read_to_eof(s, len(small))
        s.close()
        W.check(got == small, "(d) early FIN %d: %r back for %d bytes"
                % (i, got[:32], len(small)))
    wait_closed(upstream, "(d)")
    W.log("(d) half-close: 1 MiB + SHUT_WR, and 10 early FINs: full echo "
          "then EOF; upstream connections closed")
    s = connect(port)
    W.echo_exchange(s, b"about to reset")
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()                   # linger 0: RST instead of FIN
    wait_closed(upstream, "(d) after a client reset")
    W.log("(d) client reset: upstream connection closed")


def scenario_idle(port, upstream):
    """(e) idle_timeout on the proxy listener closes an idle client."""
    s = connect(port)
    W.echo_exchange(s, b"ping")
    s.setblocking(True)
    elapsed = expect_clean_close(s, 10.0, False)
    s.close()
    W.check(elapsed >= IDLE_MS / 1000.0 * 0.7, "idle client closed after "
            "%.3f s, before idle_timeout = %d ms" % (elapsed, IDLE_MS))
    wait_closed(upstream, "(e)")
    W.log("(e) idle client closed %.3f s after its last byte "
          "(idle_timeout = %d ms); upstream connection closed too"
          % (elapsed, IDLE_MS))


class BlackHole:
    """A listening socket whose accept queue is full: the kernel drops
    SYNs to it, so a connect hangs until its timeout."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((W.LOOPBACK, 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.filler = connect(self.port)  # fills the queue of length 1

    def open_up(self):
        """Accept the filler: the next SYN retransmitted gets through."""
        self.sock.settimeout(W.IO_TIMEOUT)
        conn, _ = self.sock.accept()
        conn.close()
        self.filler.close()

    def close(self):
        self.filler.close()
        self.sock.close()


def scenario_hanging(slow, bh1, bh2, e1, hole):
    """(f) connect_timeout, and a client that leaves while connecting."""
    t0 = time.monotonic()
    W.echo_roundtrip(slow, b"after the hanging one")
    took = time.monotonic() - t0
    W.check(took >= 0.3, "(f) echo through (black hole x2, echo1) took "
            "only %.3f s: was connect_timeout = 400 ms honoured?" % took)
    W.log("(f) black hole skipped after connect_timeout: echo in %.3f s"
          % took)
    wait_closed(e1, "(f)")

    # The client times out (200 ms) during an attempt that fails (800 ms).
    s = connect(bh1)
    expect_clean_close(s, 5.0, False)
    s.close()
    W.wait_for(lambda: tcp_sockets(remote_port=hole.port,
                                   states=("SYN_SENT",)) == 0,
               W.IO_TIMEOUT, "the abandoned attempt to end")
    W.log("(f) client closed while connecting; the attempt then failed")

    # The client times out during an attempt that then succeeds.
    s = connect(bh2)
    expect_clean_close(s, 5.0, False)
    s.close()
    hole.open_up()
    conn, _ = hole.sock.accept()
    conn.settimeout(W.IO_TIMEOUT)
    try:
        r = conn.recv(1)
    except ConnectionResetError:
        r = b""
    conn.close()
    W.check(r == b"", "(f) late upstream connection got %r, expected it "
            "closed" % r)
    W.log("(f) client closed while connecting; the late upstream "
          "connection was closed by the proxy")


def scenario_bad_config(port):
    """(g) weftd -t refuses bad proxy groups, naming the key."""
    tmp = W.make_tmpdir()
    cases = {
        "no upstreams": ("proxy = { connect_timeout = 100; };",
                         "upstreams"),
        "no group": ("", "upstreams"),
        "empty list": ("proxy = { upstreams = (); };", "upstreams"),
        "no port": ('proxy = { upstreams = ("127.0.0.1"); };', "upstreams"),
        "port 0": ('proxy = { upstreams = ("127.0.0.1:0"); };', "upstreams"),
        "bare IPv6": ('proxy = { upstreams = ("::1:80"); };', "upstreams"),
        "not a string": ("proxy = { upstreams = (80); };", "upstreams"),
        "timeout 0": ('proxy = { upstreams = ("127.0.0.1:1"); '
                      "connect_timeout = 0; };", "connect_timeout"),
        "unknown key": ('proxy = { upstreams = ("127.0.0.1:1"); '
                        "retries = 3; };", "retries"),
    }
    for name, (group, key) in cases.items():
        path = os.path.join(tmp, "bad.conf")
        with open(path, "w") as f:
            f.write("workers = 1;\nlisteners = (\n  { name = \"p\"; "
                    "listen = \"127.0.0.1:%d\"; protocol = \"proxy\";\n"
                    "    %s }\n);\n" % (port, group))
        rc, out, err = W.run_weftd(["-t", "-c", path], tmp, name="bad")
        W.check(rc != 0, "(g) %s: weftd -t accepted it" % name)
        W.check(key in err, "(g) %s: error does not name %s: %r"
                % (name, key, err))
    path = os.path.join(tmp, "good.conf")
    with open(path, "w") as f:
        f.write("workers = 1;\nlisteners = (\n  { name = \"p\"; listen = "
                "\"127.0.0.1:%d\"; protocol = \"proxy\"; proxy = { "
                "upstreams = [\"localhost:1\", \"[::1]:2\"]; "
                "connect_timeout = 600000; }; }\n);\n" % port)
    rc, out, err = W.run_weftd(["-t", "-c", path], tmp, name="good")
    W.check(rc == 0, "(g) a good proxy config is refused: %r" % err)
    W.log("(g) weftd -t: %d bad proxy configs refused, a good one passes"
          % len(cases))


# --------------------------------------------------------------------------

def echo_listener(name, port):
    return ('  { name = "%s"; listen = "127.0.0.1:%d"; protocol = "echo"; }'
            % (name, port))


def proxy_listener(name, port, upstreams, extra="", proxy_extra=""):
    """A proxy listener: extra goes in the listener, proxy_extra in its
    proxy group after upstreams."""
    ups = ", ".join('"127.0.0.1:%d"' % p for p in upstreams)
    return ('  { name = "%s"; listen = "127.0.0.1:%d"; protocol = "proxy"; '
            '%s\n    proxy = { upstreams = (%s); %s }; }'
            % (name, port, extra, ups, proxy_extra))


def main():
    rng = W.make_rng()
    hole = BlackHole()
    ports = {k: W.free_port() for k in (
        "e1", "e2", "dead1", "dead2", "p", "rr", "down", "idle", "slow",
        "bh1", "bh2")}
    P = ports
    lst = [
        echo_listener("echo1", P["e1"]),
        echo_listener("echo2", P["e2"]),
        proxy_listener("p", P["p"], [P["e1"]],
                       proxy_extra="connect_timeout = 2000;"),
        proxy_listener("rr", P["rr"], [P["dead1"], P["e1"], P["e2"]]),
        proxy_listener("down", P["down"], [P["dead1"], P["dead2"]]),
        proxy_listener("idle", P["idle"], [P["e1"]],
                       extra="idle_timeout = %d;" % IDLE_MS),
        # Worker slot i starts at upstream i: the black hole is listed
        # twice so that the first connection on either worker meets it.
        proxy_listener("slow", P["slow"], [hole.port, hole.port, P["e1"]],
                       proxy_extra="connect_timeout = 400;"),
        proxy_listener("bh1", P["bh1"], [hole.port],
                       extra="idle_timeout = 200;",
                       proxy_extra="connect_timeout = 800;"),
        proxy_listener("bh2", P["bh2"], [hole.port],
                       extra="idle_timeout = 200;",
                       proxy_extra="connect_timeout = 5000;"),
    ]
    conf = "workers = 2;\nlisteners = (\n%s\n);\n" % ",\n".join(lst)
    try:
        with W.Weftd(conf) as d:
            workers = d.wait_workers(2)
            d.wait_tcp(P["e1"])
            d.wait_tcp(P["e2"])
            d.wait_tcp(P["p"])
            wait_closed(P["e1"], "start-up probes")
            scenario_big_slow(d, P["p"], P["e1"], rng)
            scenario_round_robin(P["rr"], P["e1"], P["e2"], rng)
            scenario_all_down(P["down"])
            scenario_half_close(P["p"], P["e1"], rng)
            scenario_idle(P["idle"], P["e1"])
            scenario_hanging(P["slow"], P["bh1"], P["bh2"], P["e1"], hole)
            W.check(d.workers() == workers, "workers changed during the "
                    "test (a crash?): %r -> %r" % (workers, d.workers()))
            rc, _ = d.stop()
            W.check(rc == 0, "weftd exit code %s after SIGTERM" % rc)
    finally:
        hole.close()
    scenario_bad_config(P["p"])


if __name__ == "__main__":
    W.run(main, timeout=120)
