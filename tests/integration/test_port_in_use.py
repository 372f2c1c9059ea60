"""weftd refuses to start when a listener's port is in use.

Scenarios, each with the port held by a plain socket of this test (no
SO_REUSEPORT, so weftd's SO_REUSEPORT bind must fail):
  1. TCP port held by a listening socket, config with that TCP listener;
  2. UDP port held by a bound datagram socket, config with that UDP listener;
  3. config with a free TCP listener first and a busy UDP listener second:
     the TCP socket weftd opened before failing must be released too.
In each: weftd exits with code 1 (deadline 15 s), stderr contains "in use"
and the busy address 127.0.0.1:PORT, and no process whose command line
names the unique temporary config path remains (scanned in /proc/*/cmdline,
allowing at most 2 s for a stray to go away), and the holder's socket
still works.

Synchronisation: subprocess wait with a deadline for the exit; /proc polled
with a deadline for strays.
"""

import socket
import sys
import time

sys.dont_write_bytecode = True    # no __pycache__ in the source tree
import weftlib as W  # noqa: E402

EXIT_DEADLINE = 15.0


def expect_refusal(title, conf, busy_port, also_free=None):
    d = W.Weftd(conf, name="weftd-" + title)
    d.start()
    t0 = time.monotonic()
    try:
        rc = d.proc.wait(EXIT_DEADLINE)
    except W.subprocess.TimeoutExpired:
        raise W.TestFailure("%s: weftd still running %.0f s after start "
                            "although 127.0.0.1:%d is in use"
                            % (title, EXIT_DEADLINE, busy_port))
    elapsed = time.monotonic() - t0
    err = d.log_text()
    W.log("%s: exit %s after %.2f s; stderr: %s"
          % (title, rc, elapsed, err.strip().replace("\n", " | ")))
    W.check(rc == 1, "%s: exit code %s, expected 1" % (title, rc))
    W.check("in use" in err.lower(), "%s: stderr does not say 'in use': %r"
            % (title, err))
    addr = "127.0.0.1:%d" % busy_port
    W.check(addr in err, "%s: stderr does not name the address %s: %r"
            % (title, addr, err))

    stray = W.pids_with_arg(d.config_path)
    if stray:
        W.log("%s: processes with the config path right after exit: %r"
              % (title, {p: W.read_comm(p) for p in stray}))
        d.seen.update(stray)
    try:
        W.wait_for(lambda: not W.pids_with_arg(d.config_path), 2.0,
                   "no process with %s" % d.config_path)
    except W.TestFailure:
        left = W.pids_with_arg(d.config_path)
        raise W.TestFailure("%s: processes left behind after exit 1: %r"
                            % (title, {p: W.read_comm(p) for p in left}))
    if also_free is not None:
        W.check(W.port_bindable(also_free),
                "%s: TCP port %d (the free listener) is still held after "
                "weftd exited:\n%s" % (title, also_free,
                                       W.ss_dump(also_free)))


def listeners(*items):
    return ("workers = 2;\nlisteners = (\n%s\n);\n"
            % ",\n".join('  { name = "%s"; listen = "%s"; protocol = "echo"; }'
                         % it for it in items))


def main():
    # 1. TCP port in use.
    port = W.free_port("tcp")
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind((W.LOOPBACK, port))
    holder.listen(8)
    try:
        expect_refusal("tcp", listeners(("echo", "127.0.0.1:%d" % port)),
                       port)
        # The holder is untouched: it still accepts.
        c = socket.create_connection((W.LOOPBACK, port), timeout=5)
        holder.settimeout(5)
        a, _ = holder.accept()
        a.close()
        c.close()
    finally:
        holder.close()

    # 2. UDP port in use.
    port = W.free_port("udp")
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    holder.bind((W.LOOPBACK, port))
    try:
        expect_refusal("udp", listeners(("echo-udp",
                                         "udp://127.0.0.1:%d" % port)), port)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.sendto(b"still mine", (W.LOOPBACK, port))
        s.close()
        holder.settimeout(5)
        W.check(holder.recv(100) == b"still mine",
                "the holder's UDP socket lost its datagram")
    finally:
        holder.close()

    # 3. A free TCP listener, then a busy UDP one.
    free = W.free_port("tcp")
    port = W.free_port("udp")
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    holder.bind((W.LOOPBACK, port))
    try:
        expect_refusal("tcp-free-udp-busy",
                       listeners(("echo", "127.0.0.1:%d" % free),
                                 ("echo-udp", "udp://127.0.0.1:%d" % port)),
                       port, also_free=free)
    finally:
        holder.close()


if __name__ == "__main__":
    W.run(main, timeout=120)
