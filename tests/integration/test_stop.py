"""Graceful stop under load: what is in flight finishes, nothing is reset.

weftd (2 workers, shutdown_timeout = 20) serves 20 connections that are in
the middle of an exchange: each has sent the first half of a message and
read its echo. SIGTERM goes to the supervisor. Then:

  * each of the 20 connections sends its second half and reads it back in
    full: the draining workers keep serving them;
  * new connections are refused (ECONNREFUSED) once the workers closed the
    listening sockets; one that arrives in the instant between a worker's
    last accept and its close may be reset before any byte (the kernel
    does that), but a connection that was served is never reset;
  * when the clients close, the workers exit at once (not at the timeout)
    and the supervisor exits 0.

Synchronisation: waits for the workers and the port, then for the refusal
and for the processes to be gone, each with a deadline.
"""

import errno
import os
import signal
import socket
import time

import weftlib as W

N = 20
HALF = 3000


def main():
    port = W.free_port("tcp")
    conf = ("workers = 2;\n"
            "shutdown_timeout = 20;\n"
            "listeners = (\n"
            '  { name = "echo"; listen = "127.0.0.1:%d"; protocol = "echo"; }\n'
            ");\n" % port)
    rng = W.make_rng()
    with W.Weftd(conf) as d:
        workers = d.wait_workers(2)
        d.wait_tcp(port)
        conns = []
        for _ in range(N):
            s = socket.create_connection((W.LOOPBACK, port),
                                         timeout=W.IO_TIMEOUT)
            msg = rng.randbytes(2 * HALF)
            W.exchange(s, msg[:HALF], HALF)
            conns.append((s, msg))
        os.kill(d.pid, signal.SIGTERM)

        # New connections: refused once the sockets are closed. One that
        # the kernel still completes is served, or reset before any byte
        # if it lands between a worker's last accept and its close.
        def refused():
            try:
                s = socket.create_connection((W.LOOPBACK, port), timeout=2)
            except ConnectionRefusedError:
                return True
            try:
                W.echo_exchange(s, b"late", timeout=W.IO_TIMEOUT)
            except W.EchoError as e:
                W.check(e.kind in ("reset", "eof"), "a late connection: %s"
                        % e)
            finally:
                s.close()
            return False
        W.wait_for(refused, 10, "new connections to be refused")

        for s, msg in conns:
            got = W.exchange(s, msg[HALF:], HALF)
            W.check(got == msg[HALF:], "an in-flight exchange was altered")
        W.log("%d in-flight connections finished after SIGTERM" % N)
        W.check(d.running(), "weftd exited while connections were open")
        t0 = time.monotonic()
        for s, _ in conns:
            s.close()
        W.wait_for(lambda: d.poll() is not None and
                   not any(W.pid_alive(p) for p in workers),
                   10, "weftd to exit once the clients closed")
        took = time.monotonic() - t0
        W.check(d.poll() == 0, "exit code %s" % d.poll())
        W.check(took < 10, "exit took %.1f s" % took)
        W.log("weftd exited %.2f s after the last client closed, code 0"
              % took)
        try:
            socket.create_connection((W.LOOPBACK, port), timeout=2).close()
            W.check(False, "the port still accepts after the stop")
        except OSError as e:
            W.check(e.errno == errno.ECONNREFUSED, "after the stop: %s" % e)


if __name__ == "__main__":
    W.run(main, timeout=120)
