"""UDP echo: each datagram comes back to its sender, byte for byte.

weftd runs 2 workers with a UDP and a TCP echo listener on the same port
(both checked free first).  `ss -lunH` must show one UDP socket per worker
slot (2) on 127.0.0.1:PORT.  Then 200 round trips with payload sizes
1..1400 bytes (edge sizes included), from a new client socket every 10
datagrams so that the kernel's reuseport hash spreads them over both
workers.  A lost datagram is retried at most 2 more times (2 s timeout each,
from a fresh socket so that a late reply cannot be mistaken for the
answer); a datagram still unanswered after the retries fails the test, as
does any wrong byte or a reply from another address.  Retries are counted
and reported; loopback should need none.  A TCP echo on the same port
checks that both listeners coexist.

Synchronisation: polls /proc for 2 workers, polls UDP and TCP probe echoes
until they answer, polls `ss` for the 2 UDP sockets; all with deadlines.
"""

import socket
import sys

sys.dont_write_bytecode = True    # no __pycache__ in the source tree
import weftlib as W  # noqa: E402

ROUND_TRIPS = 200
PER_SOCKET = 10


def main():
    port = W.free_port("both")
    conf = ("workers = 2;\n"
            "listeners = (\n"
            '  { name = "echo-udp"; listen = "udp://127.0.0.1:%d"; '
            'protocol = "echo"; },\n'
            '  { name = "echo"; listen = "127.0.0.1:%d"; protocol = "echo"; }\n'
            ");\n" % (port, port))
    rng = W.make_rng()
    with W.Weftd(conf) as d:
        d.wait_workers(2)
        d.wait_udp(port)
        d.wait_tcp(port)
        try:
            W.wait_for(lambda: W.listening_sockets(port, "udp") == 2, 5.0,
                       "2 UDP sockets on port %d" % port)
        except W.TestFailure:
            raise W.TestFailure("expected 2 UDP sockets on 127.0.0.1:%d, ss "
                                "shows %d:\n%s"
                                % (port, W.listening_sockets(port, "udp"),
                                   W.ss_dump(port)))
        W.log("ss -lunH: 2 UDP sockets on 127.0.0.1:%d" % port)

        sizes = W.payload_sizes(rng, ROUND_TRIPS, 1400)
        retries = lost = 0
        problems = []
        sock = None
        for i, size in enumerate(sizes):
            if i % PER_SOCKET == 0:
                if sock:
                    sock.close()
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sock.bind((W.LOOPBACK, 0))
                sock.settimeout(2.0)
            data = rng.randbytes(size)
            sock.sendto(data, (W.LOOPBACK, port))
            try:
                reply, addr = sock.recvfrom(65536)
            except socket.timeout:
                # Lost (or very late): retry from fresh sockets, and use a
                # fresh socket for the rest of this group too.
                sock.close()
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sock.bind((W.LOOPBACK, 0))
                sock.settimeout(2.0)
                try:
                    used = W.udp_roundtrip(port, data, timeout=2.0,
                                           attempts=2)
                    retries += 1 + used
                except W.EchoError as e:
                    if e.kind != "timeout":
                        problems.append("datagram %d (%d bytes), retry: %s"
                                        % (i, size, e))
                    else:
                        lost += 1
                        retries += 2
                        problems.append("datagram %d (%d bytes) lost after "
                                        "3 attempts" % (i, size))
                continue
            if addr != (W.LOOPBACK, port):
                problems.append("datagram %d: reply from %r" % (i, addr))
            elif reply != data:
                problems.append("datagram %d: sent %d bytes, got %d, first "
                                "difference at %d"
                                % (i, size, len(reply),
                                   W.first_difference(reply, data)))
        if sock:
            sock.close()
        W.log("%d UDP round trips, sizes %d..%d: %d retries, %d lost, %d "
              "other problems" % (ROUND_TRIPS, min(sizes), max(sizes),
                                  retries, lost, len(problems) - lost))
        W.check(not problems, "UDP echo problems:\n  %s"
                % "\n  ".join(problems[:30]))

        # The largest datagrams come back whole, one at a time (a burst of
        # them would overflow the default socket buffers and be dropped).
        for n in (65507, 65000, 9000):
            data = rng.randbytes(n)
            W.udp_roundtrip(port, data, timeout=2.0, attempts=3)
        # A burst of 50 from one socket spans several receive batches of
        # one worker (one source address hashes to one socket): all come
        # back, in order.
        burst = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        burst.bind((W.LOOPBACK, 0))
        burst.settimeout(2.0)
        sent = [b"%03d" % i + rng.randbytes(rng.randrange(1, 200))
                for i in range(50)]
        for data in sent:
            burst.sendto(data, (W.LOOPBACK, port))
        got = []
        try:
            while len(got) < len(sent):
                got.append(burst.recvfrom(65536)[0])
        except socket.timeout:
            pass
        burst.close()
        W.check(got == sent, "burst of %d datagrams: %d came back, first "
                "mismatch at %d" % (len(sent), len(got),
                                    W.first_difference(got, sent)))
        W.log("65507-byte datagrams and a burst of 50 echoed intact, in order")

        data = rng.randbytes(4096)
        W.echo_roundtrip(port, data)
        W.log("TCP echo on the same port OK")


if __name__ == "__main__":
    W.run(main, timeout=120)
