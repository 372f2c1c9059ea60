"""TCP echo with 2 workers, then a clean SIGTERM shutdown.

  * weftd -w 2 (config workers = 2): exactly 2 children named weftd-w0 and
    weftd-w1, supervisor named weftd;
  * `ss -ltnH` shows exactly 2 LISTEN sockets on 127.0.0.1:PORT;
  * 500 echo round trips, each over a new connection, random payloads of
    varied sizes, every byte checked;
  * a 1 MiB echo over one connection (sent while reading, every byte
    checked);
  * SIGTERM: supervisor and both workers gone within 2 s, exit code 0, the
    port can be bound again with a plain bind.

Synchronisation: polls /proc until exactly 2 workers exist, polls a TCP probe
echo until the port answers, polls `ss` until 2 LISTEN sockets are seen, and
after SIGTERM polls /proc and the supervisor's exit status; all with
deadlines.  The 2 s shutdown limit is measured and asserted.
"""

import signal
import sys

sys.dont_write_bytecode = True    # no __pycache__ in the source tree
import weftlib as W  # noqa: E402

ROUND_TRIPS = 500
BIG = 1 << 20


def main():
    port = W.free_port("tcp")
    conf = ("workers = 2;\n"
            "cpu_affinity = true;\n"
            "listeners = (\n"
            '  { name = "echo"; listen = "127.0.0.1:%d"; protocol = "echo"; }\n'
            ");\n" % port)
    rng = W.make_rng()
    with W.Weftd(conf, ["-w", "2"]) as d:
        workers = d.wait_workers(2)
        W.log("workers: %r" % workers)
        W.check(sorted(workers.values()) == ["weftd-w0", "weftd-w1"],
                "worker names %r, expected weftd-w0 and weftd-w1"
                % sorted(workers.values()))
        comm = W.read_comm(d.pid)
        W.check(comm == "weftd", "supervisor comm is %r, expected 'weftd'"
                % comm)
        d.wait_tcp(port)

        try:
            n = W.wait_for(lambda: W.listening_sockets(port) == 2 or None,
                           5.0, "2 LISTEN sockets on port %d" % port)
        except W.TestFailure:
            raise W.TestFailure("expected exactly 2 LISTEN sockets on "
                                "127.0.0.1:%d, ss shows %d:\n%s"
                                % (port, W.listening_sockets(port),
                                   W.ss_dump(port)))
        W.log("ss -ltnH: 2 LISTEN sockets on 127.0.0.1:%d" % port)

        sizes = W.payload_sizes(rng, ROUND_TRIPS, 131072)
        total = 0
        for i, size in enumerate(sizes):
            data = rng.randbytes(size)
            try:
                W.echo_roundtrip(port, data)
            except W.EchoError as e:
                raise W.TestFailure("round trip %d/%d (%d bytes) failed: %s"
                                    % (i + 1, ROUND_TRIPS, size, e))
            total += size
        W.log("%d round trips on new connections OK (%d bytes, sizes %d.."
              "%d)" % (ROUND_TRIPS, total, min(sizes), max(sizes)))

        data = rng.randbytes(BIG)
        try:
            W.echo_roundtrip(port, data, timeout=60.0)
        except W.EchoError as e:
            raise W.TestFailure("1 MiB echo failed: %s" % e)
        W.log("1 MiB echo over one connection OK")

        # The same workers are still there (none crashed meanwhile).
        now = d.workers()
        W.check(now == workers, "workers changed during the echo test: "
                "%r -> %r" % (workers, now))

        rc, elapsed = d.stop(signal.SIGTERM, limit=2.0)
        W.check(rc == 0, "supervisor exit code %s after SIGTERM, expected 0"
                % rc)
        W.check(W.port_bindable(port), "port %d cannot be bound after "
                "shutdown:\n%s" % (port, W.ss_dump(port)))
        W.log("port %d is free again" % port)


if __name__ == "__main__":
    W.run(main, timeout=180)
