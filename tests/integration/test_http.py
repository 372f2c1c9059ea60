"""The http protocol: fixed routes, keep-alive, pipelining, errors, drain.

One weftd (2 workers) with an http listener:
  routes = ( { path = "/hello"; body = "Hello, World!"; } ), header_timeout
  = 500 ms, max_head = 4096.
Checks, over raw sockets (and curl when installed):
  * GET /hello: 200, the body, Date/Server/Content-Length; HEAD: no body;
    unknown path 404; POST to /hello 405 with Allow, after its body;
  * keep-alive: 100 requests on one connection; HTTP/1.0 closes unless
    keep-alive is asked for;
  * a pipelined batch of 16 requests answered in order, in one read;
  * bodies: Content-Length and chunked are read and discarded, split at
    any point; Expect: 100-continue gets its 100;
  * malformed input: 400 (and the connection closed) for bad syntax and
    for Content-Length with Transfer-Encoding; 431 for a 100 KiB header;
    505 for HTTP/2.0; 501 for an unknown transfer coding;
  * a client that drips its head is answered 408 and closed after
    header_timeout while other clients are served;
  * 20 reloads while 8 keep-alive clients loop on GET /hello: every
    request answered 200, no connection reset, none closed without
    "Connection: close" first.
Synchronisation: replies are read to their end with deadlines; reloads are
synchronous (weftctl).
"""

import os
import socket
import threading
import time

import weftlib as W


def config(port):
    return ("workers = 2;\n"
            "shutdown_timeout = 10;\n"
            "listeners = (\n"
            '  { name = "web"; listen = "127.0.0.1:%d"; protocol = "http";\n'
            '    http = { header_timeout = 500; max_head = 4096; max_target = 1024;\n'
            '             routes = ( { path = "/hello"; body = "Hello, World!";'
            ' type = "text/plain"; } ); }; }\n'
            ");\n" % port)


class Conn:
    """A client connection that reads whole responses."""

    def __init__(self, port):
        self.s = socket.create_connection((W.LOOPBACK, port),
                                          timeout=W.IO_TIMEOUT)
        self.rest = b""

    def sendall(self, data):
        self.s.sendall(data)

    def close(self):
        self.s.close()

    def _more(self):
        chunk = self.s.recv(65536)
        self.rest += chunk
        return bool(chunk)

    def response(self, head_only=False):
        """(status, headers, body), or None at EOF."""
        while b"\r\n\r\n" not in self.rest:
            if not self._more():
                return None
        head, self.rest = self.rest.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
        n = 0 if head_only or status in (100, 204, 304) else \
            int(headers.get("content-length", "0"))
        while len(self.rest) < n and self._more():
            pass
        body, self.rest = self.rest[:n], self.rest[n:]
        return status, headers, body

    def expect_closed(self):
        try:
            more = self.rest + self.s.recv(100)
        except ConnectionResetError:
            more = b""
        W.check(more == b"", "the connection was not closed: %r" % more)


def connect(port):
    return Conn(port)


def read_response(c, head_only=False):
    return c.response(head_only)


def request(port, raw, head_only=False):
    c = Conn(port)
    try:
        c.sendall(raw)
        return c.response(head_only)
    finally:
        c.close()


def expect_closed(c):
    c.expect_closed()


def basics(port):
    st, h, body = request(port, b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    W.check(st == 200 and body == b"Hello, World!", "GET: %r %r" % (st, body))
    W.check(h.get("content-length") == "13" and "date" in h and
            h.get("server") == "weft", "headers: %r" % h)
    st, h, body = request(port, b"HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n",
                          head_only=True)
    W.check(st == 200 and h.get("content-length") == "13", "HEAD: %r" % st)
    st, _, _ = request(port, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
    W.check(st == 404, "unknown path: %r" % st)
    st, h, _ = request(port, b"POST /hello HTTP/1.1\r\nHost: x\r\n"
                       b"Content-Length: 5\r\n\r\nabcde")
    W.check(st == 405 and "GET" in h.get("allow", ""), "POST: %r %r"
            % (st, h))
    W.log("ok   basics: 200, HEAD, 404, 405")


def keepalive(port):
    s = connect(port)
    for i in range(100):
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        st, h, body = read_response(s)
        W.check(st == 200 and "connection" not in h, "request %d: %r" % (i, h))
    s.close()
    s = connect(port)
    s.sendall(b"GET /hello HTTP/1.0\r\n\r\n")
    st, h, _ = read_response(s)
    W.check(st == 200 and h.get("connection") == "close", "1.0: %r" % h)
    expect_closed(s)
    s = connect(port)
    s.sendall(b"GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    st, h, _ = read_response(s)
    W.check(h.get("connection") == "keep-alive", "1.0 keep-alive: %r" % h)
    s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    st, h, _ = read_response(s)
    W.check(h.get("connection") == "close", "Connection: close: %r" % h)
    expect_closed(s)
    W.log("ok   keep-alive: 100 requests on one connection; 1.0 rules")


def pipelined(port):
    s = connect(port)
    batch = b"".join(b"GET /%s HTTP/1.1\r\nHost: x\r\n\r\n"
                     % (b"hello" if i % 3 else b"x%d" % i) for i in range(16))
    s.sendall(batch)
    for i in range(16):
        st, _, _ = read_response(s)
        W.check(st == (200 if i % 3 else 404), "pipelined %d: %r" % (i, st))
    # Bodies split anywhere: chunked and Content-Length, then a GET.
    req = (b"POST /hello HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
           b"\r\n5\r\nhello\r\n0\r\n\r\n"
           b"PUT /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"
           b"0123456789"
           b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    for i in range(len(req)):
        s.sendall(req[i:i + 1])
    for want in (405, 405, 200):
        st, _, _ = read_response(s)
        W.check(st == want, "after bodies sent byte by byte: %r" % st)
    s.sendall(b"POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
              b"Expect: 100-continue\r\n\r\n")
    st, _, _ = read_response(s)
    W.check(st == 100, "Expect: 100-continue got %r" % st)
    s.sendall(b"abc")
    st, _, _ = read_response(s)
    W.check(st == 405, "after the 100: %r" % st)
    s.close()
    W.log("ok   pipelining: 16 in order; bodies byte by byte; 100-continue")


def errors(port):
    cases = [
        (b"GET /hello HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n", 400),
        (b"GET /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
         b"Transfer-Encoding: chunked\r\n\r\n", 400),
        (b"GET /hello HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
         501),
        (b"GET /hello HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        (b"GET /hello HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 100000 +
         b"\r\n\r\n", 431),
        (b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\n\r\n", 414),
    ]
    for raw, want in cases:
        s = connect(port)
        try:
            s.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = read_response(s)
        W.check(r is not None and r[0] == want, "%r...: %r, want %d"
                % (raw[:40], r and r[0], want))
        W.check(r[1].get("connection") == "close", "no Connection: close")
        expect_closed(s)
        s.close()
    W.log("ok   errors: 400, 400 (CL+TE), 501, 505, 431, 414; closed")


def slow_drip(port):
    s = connect(port)
    s.sendall(b"GET /hello HTTP/1.1\r\n")
    t0 = time.monotonic()
    # Meanwhile others are served.
    st, _, _ = request(port, b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    W.check(st == 200, "another client during the drip: %r" % st)
    try:
        s.sendall(b"Host")
    except OSError:
        pass
    r = read_response(s)
    took = time.monotonic() - t0
    W.check(r is not None and r[0] == 408, "slow head: %r" % (r and r[0]))
    expect_closed(s)
    W.check(took >= 0.4, "408 after %.2f s, before header_timeout" % took)
    W.log("ok   slow drip: 408 after %.2f s" % took)


class Clients:
    """Keep-alive clients looping on GET /hello; failures recorded."""

    def __init__(self, port, n):
        self.port, self.ok, self.failed, self.reconnects = port, 0, [], 0
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, daemon=True)
                        for _ in range(n)]
        for t in self.threads:
            t.start()

    def run(self):
        s = None
        deadline = time.monotonic() + 60
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                if s is None:
                    s = connect(self.port)
                s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
                r = read_response(s)
                if r is None or r[0] != 200:
                    raise OSError("answer %r" % (r and r[0]))
                with self.lock:
                    self.ok += 1
                if r[1].get("connection") == "close":
                    s.close()
                    s = None
                    with self.lock:
                        self.reconnects += 1
            except OSError as e:
                with self.lock:
                    self.failed.append(repr(e))
                if s is not None:
                    s.close()
                s = None
        if s is not None:
            s.close()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(30)
        return self.ok


def reloads(d, port):
    sock = os.path.join(d.tmpdir, "weft.sock")
    c = Clients(port, 8)
    W.wait_for(lambda: c.ok > 200 or c.failed, 20, "clients running")
    for i in range(20):
        rc, out, err = W.weftctl(sock, "reload", timeout=30)
        W.check(rc == 0, "reload %d: %s" % (i, err))
        start = c.ok
        W.wait_for(lambda: c.ok > start + 50 or c.failed, 20,
                   "requests after reload %d" % i)
    ok = c.finish()
    W.check(not c.failed, "%d failures during reloads: %s"
            % (len(c.failed), c.failed[:5]))
    W.log("http reload: %d requests over 20 reloads, %d reconnects after "
          "Connection: close, 0 failed" % (ok, c.reconnects))


def main():
    port = W.free_port("tcp")
    with W.Weftd(config(port)) as d:
        d.wait_workers(2)
        W.wait_for(lambda: W.tcp_answers(port), 20, "the http port")
        basics(port)
        keepalive(port)
        pipelined(port)
        errors(port)
        slow_drip(port)
        reloads(d, port)


if __name__ == "__main__":
    W.run(main, timeout=150)
