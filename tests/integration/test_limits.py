"""Accept limits: max_connections, and running out of descriptors.

  * max_connections = 2 with one worker: a third connection waits in the
    accept queue (its echo does not come back while two are open) and is
    served as soon as one of the first two closes; the pause is counted in
    the listener's accept_paused (weftctl stats);
  * a worker whose RLIMIT_NOFILE is exhausted pauses accepting instead of
    spinning on EMFILE: it logs the condition once, uses almost no CPU while
    blocked, and serves every queued connection once descriptors free up.

Synchronisation: waits for the port to echo, for worker log lines and for
echoes, each with a deadline. The two "not served yet" checks look for a
reply during a short window: they can only pass wrongly on a slow machine,
never fail wrongly.
"""

import os
import resource
import socket

import weftlib as W


def connect(port):
    s = socket.create_connection((W.LOOPBACK, port), timeout=W.IO_TIMEOUT)
    return s


def served(s, data):
    """Echo data over the open socket s; raises EchoError."""
    return W.echo_exchange(s, data)


def not_answered(s, window=0.3):
    """Send a byte on s and check that nothing comes back within window."""
    s.setblocking(True)
    s.sendall(b"q")
    s.settimeout(window)
    try:
        got = s.recv(1)
    except socket.timeout:
        return True
    return not got


def config(port, extra=""):
    return ("workers = 1;\n"
            "listeners = (\n"
            '  { name = "echo"; listen = "127.0.0.1:%d"; protocol = "echo";'
            " %s }\n"
            ");\n" % (port, extra))


def test_max_connections():
    port = W.free_port("tcp")
    with W.Weftd(config(port, "max_connections = 2;")) as d:
        d.wait_tcp(port)
        a, b = connect(port), connect(port)
        served(a, b"a" * 100)
        served(b, b"b" * 100)
        c = connect(port)  # the kernel completes the handshake
        W.check(not_answered(c), "a third connection was served while "
                "max_connections = 2 were open")
        a.close()
        # c's byte "q" was queued; it comes back once c is accepted.
        c.settimeout(W.IO_TIMEOUT)
        W.check(c.recv(1) == b"q", "the queued connection was not served "
                "after one of the first two closed")
        served(c, b"c" * 1000)
        b.close()
        c.close()
        sock = os.path.join(d.tmpdir, "weft.sock")

        def paused():
            st = W.ctl_json(sock, "stats")
            ls = {l["name"]: l for l in st["listeners"]}
            return ls["echo"]["accept_paused"] >= 1 and \
                st["totals"]["accept_paused"] >= 1
        W.wait_for(paused, 10.0, "accept_paused counted in weftctl stats")
        W.log("max_connections: third connection waited, then was served; "
              "the pause counted in accept_paused")


def worker_cpu(pid):
    """utime + stime of pid, in clock ticks."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def test_emfile():
    port = W.free_port("tcp")
    d = W.Weftd(config(port))
    # The worker inherits this limit: a few descriptors for the loop and the
    # socket, the rest for connections.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (32, hard))
    try:
        d.start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    with d:
        d.wait_tcp(port)
        worker = list(d.wait_workers(1))[0]
        socks = [connect(port) for _ in range(40)]
        W.wait_for(lambda: "pausing accepts" in d.log_text(), 20,
                   "the worker to log that it ran out of descriptors")
        ticks0 = worker_cpu(worker)
        W.check(not_answered(socks[-1], window=1.0),
                "the last connection was served although the worker had no "
                "descriptor left")
        used = worker_cpu(worker) - ticks0
        W.log("worker used %d ticks while blocked for 1 s" % used)
        # A worker spinning on EMFILE burns ~100 ticks per second.
        W.check(used < 30, "the worker spun while out of descriptors "
                "(%d ticks in 1 s)" % used)
        for s in socks[:20]:
            s.close()
        socks[-1].settimeout(W.IO_TIMEOUT)
        W.check(socks[-1].recv(1) == b"q", "the queued connection was not "
                "served once descriptors were free")
        for s in socks[20:-1]:
            served(s, b"x" * 10)
        for s in socks[20:]:
            s.close()
        n = d.log_text().count("pausing accepts")
        W.check(n == 1, "'pausing accepts' logged %d times, expected once"
                % n)
        d.wait_tcp(port)
        W.log("EMFILE: paused, logged once, served the queue afterwards")


def main():
    test_max_connections()
    test_emfile()


if __name__ == "__main__":
    W.run(main, timeout=120)
