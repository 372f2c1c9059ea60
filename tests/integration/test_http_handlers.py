"""C handlers on path prefixes (weft/http.h), through a module.

tests/integration/http_handlers.c is built as a shared object against
include/ and loaded with `modules`; one weftd (1 worker) puts its four
handlers on prefixes of an http listener that also has a fixed route:
  * echo (/echo/): method, path, query, a request header and the body
    come back; an added response header is sent; the longest prefix wins
    over a shorter one; HEAD gets the headers only; a chunked body is
    handed over decoded; Expect: 100-continue gets its 100 first; a body
    over max_body is answered 413 and the handler never sees it;
  * later (/later, delay 150 ms): answered from a timer; pipelined behind
    and before synchronous requests, every answer comes in order; a client
    that leaves while its request waits is counted by the aborted hook
    and the worker goes on serving;
  * stream (/stream): 2000 chunks of 10000 bytes (20 MB) through
    backpressure, chunked in HTTP/1.1 and decoded whole; in HTTP/1.0 the
    body ends with the connection;
  * file (/file): a file sent by weft_http_respond_file;
  * the example of weft-http(3), extracted from the man page and built;
  * a reload while a handler holds a request (4 s timer): the answer
    comes from the draining worker with Connection: close;
  * `weftd -t` refuses a handler no module gives, naming file:line.
"""

import os
import socket
import subprocess
import time

import weftlib as W
from test_http import Conn, request


def config(so, hi, port, data):
    return ('modules = ( "%s", "%s" );\n'
            "workers = 1;\n"
            "listeners = (\n"
            '  { name = "api"; listen = "127.0.0.1:%d"; protocol = "http";\n'
            "    http = { max_body = 100000;\n"
            '      routes = ( { path = "/hello"; body = "Hello"; } );\n'
            '      handlers = ( { prefix = "/echo/"; handler = "echo"; },\n'
            '                   { prefix = "/echo/deeper/"; handler = "later";'
            " delay = 10; },\n"
            '                   { prefix = "/later"; handler = "later";'
            " delay = 150; },\n"
            '                   { prefix = "/slow"; handler = "later";'
            " delay = 4000; },\n"
            '                   { prefix = "/stream"; handler = "stream";'
            " chunks = 2000; size = 10000; },\n"
            '                   { prefix = "/hi"; handler = "hi";'
            ' greeting = "salut"; },\n'
            '                   { prefix = "/file"; handler = "file";'
            ' path = "%s"; } ); }; }\n'
            ");\n" % (so, hi, port, data))


def echo(port):
    st, h, body = request(port, b"POST /echo/a/b?x=1&y=2 HTTP/1.1\r\n"
                          b"Host: x\r\nX-Test: hello there\r\n"
                          b"Content-Length: 5\r\n\r\nabcde")
    W.check(st == 200 and body == b"POST /echo/a/b?x=1&y=2\nhello there\n"
            b"abcde" and h.get("x-handler") == "echo",
            "echo: %r %r %r" % (st, body, h))
    st, h, body = request(port, b"HEAD /echo/z HTTP/1.1\r\nHost: x\r\n\r\n",
                          head_only=True)
    W.check(st == 200 and body == b"" and int(h["content-length"]) > 0,
            "HEAD echo: %r %r" % (st, h))
    st, _, body = request(port, b"GET /echo/deeper/x HTTP/1.1\r\nHost: x"
                          b"\r\n\r\n")
    W.check(st == 200 and body.startswith(b"later "),
            "longest prefix: %r %r" % (st, body))
    st, _, body = request(port, b"PUT /echo/c HTTP/1.1\r\nHost: x\r\n"
                          b"Transfer-Encoding: chunked\r\n\r\n"
                          b"3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\n\r\n")
    W.check(st == 200 and body == b"PUT /echo/c\n-\nabcdefg",
            "chunked body: %r %r" % (st, body))
    c = Conn(port)
    c.sendall(b"POST /echo/e HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
              b"Expect: 100-continue\r\n\r\n")
    st, _, _ = c.response()
    W.check(st == 100, "Expect: %r" % st)
    c.sendall(b"xyz")
    st, _, body = c.response()
    W.check(st == 200 and body.endswith(b"xyz"), "after 100: %r" % st)
    c.close()
    st, h, _ = request(port, b"POST /echo/big HTTP/1.1\r\nHost: x\r\n"
                       b"Content-Length: 100001\r\n\r\n")
    W.check(st == 413 and h.get("connection") == "close",
            "body over max_body: %r" % st)
    W.log("ok   echo: method/path/query/header/body, added header, HEAD, "
          "longest prefix, chunked body, 100-continue, 413")


def pipelined(port):
    c = Conn(port)
    try:
        c.sendall(b"GET /later HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /echo/1 HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /later HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /echo/2 HTTP/1.1\r\nHost: x\r\n\r\n")
        got = [c.response()[2] for _ in range(5)]
    finally:
        c.close()
    W.check(got[0].startswith(b"later ") and got[1] == b"Hello" and
            got[2].startswith(b"GET /echo/1\n") and
            got[3].startswith(b"later ") and
            got[4].startswith(b"GET /echo/2\n"),
            "pipelined answers out of order: %r" % got)
    W.log("ok   pipelined: timer answers and immediate ones in order")


def aborted(port):
    for _ in range(3):
        s = socket.create_connection((W.LOOPBACK, port))
        s.sendall(b"GET /later HTTP/1.1\r\nHost: x\r\n\r\n")
        s.close()
    # Each close is seen before the 150 ms timer; the next answer shows
    # how many the aborted hook counted.
    def counted():
        _, h, _ = request(port, b"GET /later HTTP/1.1\r\nHost: x\r\n\r\n")
        return int(h.get("x-aborted", "0")) >= 3
    W.wait_for(counted, 20, "three aborted requests counted", interval=0.2)
    W.log("ok   aborted: three clients gone before their answer, counted")


def read_chunked(s, rest):
    """Decode a chunked body from socket s; returns (body, leftover)."""
    body = bytearray()
    buf = rest
    while True:
        while b"\r\n" not in buf:
            more = s.recv(1 << 16)
            W.check(more, "EOF in a chunk size")
            buf += more
        line, buf = buf.split(b"\r\n", 1)
        n = int(line.split(b";")[0], 16)
        while len(buf) < n + 2:
            more = s.recv(1 << 20)
            W.check(more, "EOF in chunk data")
            buf += more
        W.check(buf[n:n + 2] == b"\r\n", "no CRLF after chunk data")
        if n == 0:
            return bytes(body), buf[2:]
        body += buf[:n]
        buf = buf[n + 2:]


def stream(port):
    want = (bytes((ord("a") + i % 26) for i in range(10000))) * 2000
    s = socket.create_connection((W.LOOPBACK, port), timeout=W.IO_TIMEOUT)
    s.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        more = s.recv(65536)
        W.check(more, "EOF before the stream's head: %r" % buf)
        buf += more
    head, rest = buf.split(b"\r\n\r\n", 1)
    W.check(b"transfer-encoding: chunked" in head.lower(),
            "no chunked head: %r" % head)
    body, _ = read_chunked(s, rest)
    s.close()
    W.check(body == want, "streamed body: %d bytes, want %d"
            % (len(body), len(want)))
    s = socket.create_connection((W.LOOPBACK, port), timeout=W.IO_TIMEOUT)
    s.sendall(b"GET /stream HTTP/1.0\r\n\r\n")
    data = bytearray()
    while True:
        more = s.recv(1 << 20)
        if not more:
            break
        data += more
    s.close()
    head, body = bytes(data).split(b"\r\n\r\n", 1)
    W.check(b"connection: close" in head.lower() and
            b"transfer-encoding" not in head.lower() and body == want,
            "HTTP/1.0 stream: %r, %d bytes" % (head, len(body)))
    W.log("ok   stream: 20 MB chunked with backpressure; HTTP/1.0 "
          "ended by close")


def file_handler(port, data):
    with open(data, "rb") as f:
        want = f.read()
    st, h, body = request(port, b"GET /file HTTP/1.1\r\nHost: x\r\n\r\n")
    W.check(st == 200 and body == want and
            h["content-type"] == "application/octet-stream",
            "respond_file: %r, %d bytes" % (st, len(body)))
    W.log("ok   file: %d bytes by weft_http_respond_file" % len(body))


def drained(d, port):
    """A reload while a handler holds a request: the answer still comes,
    with Connection: close, and the connection ends after it."""
    c = Conn(port)
    try:
        c.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        sock = os.path.join(d.tmpdir, "weft.sock")
        # The request must be with the handler before the reload: a
        # request on another connection answered by the same (only)
        # worker after ours was sent shows it was read.
        st, _, _ = request(port, b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        W.check(st == 200, "hello beside a slow request: %r" % st)
        rc, _, err = W.weftctl(sock, "reload", timeout=30)
        W.check(rc == 0, "reload: %s" % err)
        c.s.settimeout(30)
        st, h, body = c.response()
        W.check(st == 200 and body.startswith(b"later ") and
                h.get("connection") == "close",
                "answer across a reload: %r %r %r" % (st, h, body))
        c.expect_closed()
    finally:
        c.close()
    W.log("ok   drain: a request held by a handler during a reload is "
          "answered with Connection: close")


def refused(so, tmp):
    conf = os.path.join(tmp, "bad.conf")
    with open(conf, "w") as f:
        f.write('modules = ( "%s" );\n'
                "listeners = (\n"
                '  { name = "api"; listen = "127.0.0.1:1"; protocol = "http";'
                "\n"
                '    http = { handlers = ( { prefix = "/x";\n'
                '                            handler = "nope"; } ); }; }\n'
                ");\n" % so)
    p = subprocess.run([W.weftd_path(), "-t", "-c", conf],
                       capture_output=True, timeout=60)
    err = p.stderr.decode(errors="replace")
    W.check(p.returncode != 0 and "bad.conf:5:" in err and "nope" in err,
            "unknown handler not refused at its line: %d %r"
            % (p.returncode, err))
    W.log("ok   refused: %s" % err.strip().splitlines()[0])


def man_example(tmp):
    """weft-http(3)'s example, extracted as test_module extracts
    weft-protocol(3)'s."""
    from test_module import man_example as extract
    src = os.path.join(tmp, "hi.c")
    with open(src, "w") as f:
        f.write(extract(os.path.join(os.environ.get("WEFT_SRCDIR", "."),
                                     "man", "weft-http.3")))
    return src


def main():
    tmp = W.make_tmpdir()
    so = W.build_test_module(tmp, "http_handlers")
    hi = W.build_module(tmp, man_example(tmp), "hi")
    data = os.path.join(tmp, "data.bin")
    with open(data, "wb") as f:
        f.write(os.urandom(300000))
    port = W.free_port("tcp")
    with W.Weftd(config(so, hi, port, data)) as d:
        W.wait_for(lambda: W.tcp_answers(port), 20, "the http port")
        echo(port)
        pipelined(port)
        aborted(port)
        stream(port)
        file_handler(port, data)
        st, _, body = request(port, b"GET /hi?you HTTP/1.1\r\nHost: x\r\n\r\n")
        W.check(st == 200 and body == b"salut, you\n", "weft-http(3) example:"
                " %r %r" % (st, body))
        W.log("ok   the example of weft-http(3) answers %r" % body)
        st, _, _ = request(port, b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        W.check(st == 200 and d.running(), "serving after all that")
        drained(d, port)
    refused(so, tmp)


if __name__ == "__main__":
    W.run(main, timeout=120)
