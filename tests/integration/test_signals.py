"""SIGINT and SIGTERM to the supervisor, with clients connected.

For each signal, a fresh weftd (2 workers, a TCP and a UDP echo listener on
the same port, shutdown_timeout = 1) is started; an established TCP
connection is left open and idle (after one echo on it), then the signal is
sent to the supervisor. Both stop gracefully: SIGTERM drains for at most
shutdown_timeout, SIGINT for at most 1 s, and the idle connection holds
the workers that long. Supervisor and both workers must be gone within
2 s, the supervisor's exit code must be 0, and both the TCP and the UDP
port must be bindable again with a plain bind.

Synchronisation: polls /proc for the 2 workers, polls TCP and UDP probe
echoes, then after the signal polls /proc and the exit status (deadline
15 s, the 2 s limit is measured and asserted).  The idle client is aborted
(RST) once weftd is gone so that no TIME_WAIT state keeps the port; the
port is then polled with plain binds for at most 2 s.
"""

import signal
import socket
import struct
import sys

sys.dont_write_bytecode = True    # no __pycache__ in the source tree
import weftlib as W  # noqa: E402


def one_signal(sig):
    port = W.free_port("both")
    conf = ("workers = 2;\n"
            "shutdown_timeout = 1;\n"
            "listeners = (\n"
            '  { name = "echo"; listen = "127.0.0.1:%d"; protocol = "echo"; },\n'
            '  { name = "echo-udp"; listen = "udp://127.0.0.1:%d"; '
            'protocol = "echo"; }\n'
            ");\n" % (port, port))
    name = signal.Signals(sig).name
    with W.Weftd(conf, name="weftd-%s" % name) as d:
        workers = d.wait_workers(2)
        d.wait_tcp(port)
        d.wait_udp(port)
        idle = socket.create_connection((W.LOOPBACK, port), timeout=10)
        try:
            W.echo_exchange(idle, b"hello before %s\n" % name.encode())
            W.log("%s: workers %r, idle client connected" % (name, workers))
            rc, elapsed = d.stop(sig, limit=2.0)
            W.check(rc == 0, "supervisor exit code %s after %s, expected 0"
                    % (rc, name))
        finally:
            # Abort (RST) so that no TIME_WAIT/FIN_WAIT socket is left on
            # the server port.
            idle.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            struct.pack("ii", 1, 0))
            idle.close()
        try:
            W.wait_for(lambda: W.port_bindable(port), 2.0,
                       "TCP port %d to be bindable" % port)
        except W.TestFailure:
            raise W.TestFailure("TCP port %d still in use after %s:\n%s"
                                % (port, name, W.ss_dump(port)))
        W.check(W.port_bindable(port, socket.SOCK_DGRAM),
                "UDP port %d still in use after %s:\n%s"
                % (port, name, W.ss_dump(port)))
        W.log("%s: TCP and UDP port %d free again" % (name, port))


def main():
    one_signal(signal.SIGINT)
    one_signal(signal.SIGTERM)


if __name__ == "__main__":
    W.run(main, timeout=120)
