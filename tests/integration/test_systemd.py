"""systemd integration: sd_notify, socket activation, pid_file.

1. sd_notify: the test binds an AF_UNIX datagram socket in its temp dir and
   starts weftd (2 workers, an echo listener, pid_file set) with
   NOTIFY_SOCKET naming it.  It must receive READY=1 with MAINPID = weftd's
   pid and a STATUS naming generation 1 and 2 workers, and the echo port
   must answer at once after it (READY means serving); the pid_file then
   holds weftd's pid and no temporary file is left beside it.
   `weftctl reload`: RELOADING=1 with MONOTONIC_USEC, then READY=1 with
   "generation 2".  A broken config: weftctl reload exits 1 and systemd
   still hears RELOADING=1 then READY=1, its STATUS saying "refused".
   SIGHUP with the good config back: RELOADING=1, READY=1 "generation 3".
   `weftctl upgrade`: the old weftd sends MAINPID=<new pid> with READY=1
   and exits 0; the pid_file names the new pid; SIGTERM to the new weftd:
   STOPPING=1 (from it: NOTIFY_SOCKET was passed on), it exits, and the
   pid_file is gone.
   The same with NOTIFY_SOCKET in the abstract namespace ("@..."): READY=1.
2. Socket activation, launched as systemd does it (sh sets LISTEN_PID=$$
   and execs weftd; the socket dup2'd to descriptor 3; LISTEN_FDS=1,
   LISTEN_FDNAMES=echo), listeners "echo" (passed) and "other" (not passed,
   bound by weftd):
   a. passed socket without SO_REUSEPORT: both ports echo; the echo port has
      exactly one LISTEN socket, the test's (its inode is held by weftd and
      by each worker); after a reload the same holds and it still echoes.
   b. passed socket with SO_REUSEPORT: weftd adds one socket per other
      worker (2 LISTEN sockets for 2 workers), the passed one among them;
      echoes, also after a reload.
   Both: after `weftctl upgrade` the new weftd holds the passed socket,
   the same LISTEN count and echo hold.
   c. a passed socket bound to another port than the listener's: weftd
      exits 1 and says which listener, which addresses.
   d. a passed socket whose name is no listener's: weftd exits 1 and says
      it matches no listener; LISTEN_FDNAMES naming more sockets than
      LISTEN_FDS: exit 1.
   e. no LISTEN_FDNAMES: the socket goes to the listener of its address.
   f. (as root) ReusePort on, weftd running as nobody: it cannot join the
      root-owned socket's group, says so, and the workers share the
      passed socket (one LISTEN socket, every worker holds it).
Every wait has a deadline (socket timeouts, wait_for); no fixed sleeps.
"""

import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import weftlib as W  # noqa: E402

WORKERS = 2


def config(port, port2=None, pid_file=None):
    lines = ["workers = %d;" % WORKERS, "cpu_affinity = false;",
             "shutdown_timeout = 5;"]
    if pid_file:
        lines.append('pid_file = "%s";' % pid_file)
    lines.append("listeners = (")
    lines.append('  { name = "echo"; listen = "127.0.0.1:%d"; '
                 'protocol = "echo"; }%s' % (port, "," if port2 else ""))
    if port2:
        lines.append('  { name = "other"; listen = "127.0.0.1:%d"; '
                     'protocol = "echo"; }' % port2)
    lines.append(");")
    return "\n".join(lines) + "\n"


def write_config(path, text):
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


class EnvWeftd(W.Weftd):
    """A Weftd started with extra environment variables."""

    def __init__(self, config_text, env, **kw):
        super().__init__(config_text, **kw)
        self.env = env

    def start(self):
        argv = [W.weftd_path(), "-c", self.config_path] + self.args
        W.log("starting %s with %r" % (" ".join(argv), self.env))
        with open(self.log_path, "wb") as err, \
                open(self.stdout_path, "wb") as out:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                start_new_session=True, cwd=self.tmpdir,
                env=dict(os.environ, **self.env))
        self.pid = self.proc.pid
        self.seen.add(self.pid)
        return self


class ActivatedWeftd(W.Weftd):
    """A Weftd started as systemd starts a socket-activated service: the
    sockets at descriptors 3.., LISTEN_PID set to weftd's own pid (sh
    execs it, keeping its pid), LISTEN_FDS and LISTEN_FDNAMES."""

    def __init__(self, config_text, socks, names, uid=None, **kw):
        super().__init__(config_text, **kw)
        self.socks = socks
        self.names = names
        self.uid = uid

    def _preexec(self):
        fds = [s.fileno() for s in self.socks]
        # Out of the way first, so that dup2 to 3.. never clobbers one.
        high = [os.dup(fd) for fd in fds]
        for i, fd in enumerate(high):
            os.dup2(fd, 3 + i)          # inheritable
        if self.uid is not None:        # as a unit with User= runs it
            os.setgroups([])
            os.setgid(self.uid)
            os.setuid(self.uid)

    def start(self):
        argv = ["/bin/sh", "-c", 'LISTEN_PID=$$; export LISTEN_PID; '
                'exec "$@"', "sh", W.weftd_path(), "-c", self.config_path]
        env = dict(os.environ, LISTEN_FDS=str(len(self.socks)))
        env.pop("LISTEN_FDNAMES", None)
        if self.names is not None:
            env["LISTEN_FDNAMES"] = ":".join(self.names)
        env.pop("NOTIFY_SOCKET", None)
        W.log("starting %s (activated: %s)" % (" ".join(argv), self.names))
        with open(self.log_path, "wb") as err, \
                open(self.stdout_path, "wb") as out:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                start_new_session=True, cwd=self.tmpdir, env=env,
                close_fds=False, preexec_fn=self._preexec)
        self.pid = self.proc.pid
        self.seen.add(self.pid)
        return self


# --------------------------------------------------------------------------
# sd_notify

def notify_socket(path_or_abstract):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path_or_abstract)
    return s


def recv_until(sock, key, timeout=W.STARTUP_TIMEOUT, seen=None):
    """Datagrams until one has key (e.g. "READY=1"); returns it as a dict.
    Every datagram received is appended to seen (a list of dicts)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise W.TestFailure("no %s from weftd within %.0f s (got %r)"
                                % (key, timeout, seen))
        sock.settimeout(left)
        try:
            data = sock.recv(4096)
        except socket.timeout:
            continue
        msg = dict(l.split("=", 1) for l in
                   data.decode().splitlines() if "=" in l)
        W.log("notify: %r" % msg)
        if seen is not None:
            seen.append(msg)
        k, v = key.split("=", 1)
        if msg.get(k) == v:
            return msg


def test_notify():
    tmp = W.make_tmpdir()
    port = W.free_port()
    pid_file = os.path.join(tmp, "weftd.pid")
    ns = notify_socket(os.path.join(tmp, "notify.sock"))
    good = config(port, pid_file=pid_file)
    with EnvWeftd(good, {"NOTIFY_SOCKET": os.path.join(tmp, "notify.sock")},
                  tmpdir=tmp) as d:
        msg = recv_until(ns, "READY=1")
        W.check(msg.get("MAINPID") == str(d.pid),
                "MAINPID %r, weftd is %d" % (msg.get("MAINPID"), d.pid))
        W.check("generation 1, %d workers" % WORKERS in msg.get("STATUS", ""),
                "STATUS %r" % msg.get("STATUS"))
        # READY=1 means serving: no wait here.
        W.echo_roundtrip(port, b"ready means serving\n")
        with open(pid_file) as f:
            W.check(f.read() == "%d\n" % d.pid, "pid_file content")
        W.check(not os.path.exists(pid_file + ".tmp"), "pid_file.tmp left")
        sock = os.path.join(tmp, "weft.sock")

        rc, out, err = W.weftctl(sock, "reload")
        W.check(rc == 0, "reload: %d %s %s" % (rc, out, err))
        seen = []
        msg = recv_until(ns, "READY=1", seen=seen)
        W.check(seen[0].get("RELOADING") == "1" and
                seen[0].get("MONOTONIC_USEC", "").isdigit(),
                "RELOADING=1 with MONOTONIC_USEC first: %r" % seen)
        W.check("generation 2" in msg.get("STATUS", ""), "STATUS %r" % msg)

        write_config(d.config_path, good + "this is not a setting\n")
        rc, out, err = W.weftctl(sock, "reload")
        W.check(rc == 1, "a broken config reloads: %d %s" % (rc, out))
        seen = []
        msg = recv_until(ns, "READY=1", seen=seen)
        W.check(seen[0].get("RELOADING") == "1", "RELOADING first: %r" % seen)
        W.check("refused" in msg.get("STATUS", "") and
                "generation 2" in msg.get("STATUS", ""),
                "STATUS of a refused reload: %r" % msg)

        write_config(d.config_path, good)
        os.kill(d.pid, signal.SIGHUP)
        seen = []
        msg = recv_until(ns, "READY=1", seen=seen)
        W.check(seen[0].get("RELOADING") == "1", "RELOADING first: %r" % seen)
        W.check("generation 3" in msg.get("STATUS", ""), "STATUS %r" % msg)
        W.echo_roundtrip(port, b"after the reloads\n")

        # Binary upgrade: the old weftd (main pid) hands MAINPID over.
        new = W.ctl_json(sock, "upgrade")["pid"]
        msg = recv_until(ns, "MAINPID=%d" % new)
        W.check(msg.get("READY") == "1", "READY=1 with MAINPID: %r" % msg)
        W.wait_for(lambda: d.poll() is not None, W.EXIT_TIMEOUT,
                   "the old weftd to exit")
        W.check(d.poll() == 0, "old weftd exit status %r" % d.poll())
        W.echo_roundtrip(port, b"after the upgrade\n")
        with open(pid_file) as f:
            W.check(f.read() == "%d\n" % new, "pid_file names the new pid")

        # The new weftd is the main process: it says STOPPING=1.
        os.kill(new, signal.SIGTERM)
        recv_until(ns, "STOPPING=1")
        W.wait_for(lambda: not W.pid_alive(new), W.EXIT_TIMEOUT,
                   "the new weftd to exit")
        W.wait_for(lambda: not os.path.exists(pid_file), W.EXIT_TIMEOUT,
                   "pid_file removed at exit")
    ns.close()

    # The abstract namespace.
    name = "weft-test-%d-%d" % (os.getpid(), port)
    ns = notify_socket("\0" + name)
    with EnvWeftd(config(W.free_port()), {"NOTIFY_SOCKET": "@" + name}) as d:
        msg = recv_until(ns, "READY=1")
        W.check(msg.get("MAINPID") == str(d.pid), "abstract: MAINPID")
        d.stop()
    ns.close()


# --------------------------------------------------------------------------
# Socket activation

def listener(port, reuseport):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuseport:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind((W.LOOPBACK, port))
    s.listen(16)
    return s


def socket_inodes(pid):
    out = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                t = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if t.startswith("socket:["):
                out.add(int(t[8:-1]))
    except OSError:
        pass
    return out


def check_activated(sup, port, port2, ino, want_listen):
    W.echo_roundtrip(port, b"passed socket\n")
    W.echo_roundtrip(port2, b"bound by weftd\n")
    n = W.listening_sockets(port)
    W.check(n == want_listen, "%d LISTEN sockets on the passed port, "
            "expected %d:\n%s" % (n, want_listen, W.ss_dump(port)))
    W.check(ino in socket_inodes(sup), "the supervisor holds the passed "
            "socket")
    # Shared (want 1): every worker accepts on it; reuseport: worker 0 does,
    # the others on their own sockets of its group.
    workers = {p: c for p, c in W.children(sup).items()
               if W.WORKER_COMM_RE.match(c)}
    for w, comm in workers.items():
        holds = ino in socket_inodes(w)
        W.check(holds == (want_listen == 1 or comm == "weftd-w0"),
                "%s (pid %d) %s the passed socket"
                % (comm, w, "holds" if holds else "does not hold"))


def test_activation(reuseport):
    port, port2 = W.free_port(), W.free_port()
    s = listener(port, reuseport)
    ino = os.fstat(s.fileno()).st_ino
    with ActivatedWeftd(config(port, port2), [s], ["echo"]) as d:
        d.wait_workers(WORKERS)
        W.wait_for(lambda: W.tcp_answers(port2), W.STARTUP_TIMEOUT,
                   "the other listener")
        # Without ReusePort every worker accepts on the one passed socket;
        # with it, weftd adds one socket per other worker to its group.
        want = WORKERS if reuseport else 1
        check_activated(d.pid, port, port2, ino, want)
        sock = os.path.join(d.tmpdir, "weft.sock")
        rc, out, err = W.weftctl(sock, "reload")
        W.check(rc == 0, "reload: %d %s %s" % (rc, out, err))
        W.wait_for(lambda: len(d.workers()) == WORKERS, W.EXIT_TIMEOUT,
                   "the old generation to exit")
        check_activated(d.pid, port, port2, ino, want)
        W.check("passed by systemd" in d.log_text(), "start-up log line")
        # A binary upgrade hands the passed socket over like any other.
        new = W.ctl_json(sock, "upgrade")["pid"]
        W.wait_for(lambda: d.poll() is not None, W.EXIT_TIMEOUT,
                   "the old weftd to exit")
        W.wait_for(lambda: len([c for c in W.children(new).values()
                                if W.WORKER_COMM_RE.match(c)]) == WORKERS,
                   W.EXIT_TIMEOUT, "the new weftd's workers")
        check_activated(new, port, port2, ino, want)
        os.kill(new, signal.SIGTERM)
        W.wait_for(lambda: not W.pid_alive(new), W.EXIT_TIMEOUT,
                   "the new weftd to exit")
    s.close()


def test_activation_refused():
    port, other = W.free_port(), W.free_port()
    s = listener(other, False)
    d = ActivatedWeftd(config(port), [s], ["echo"])
    with d:
        W.wait_for(lambda: d.poll() is not None, W.EXIT_TIMEOUT,
                   "weftd to refuse a socket of another address")
        text = d.log_text()
        W.check(d.poll() == 1, "exit status %r" % d.poll())
        W.check("listener echo" in text and "127.0.0.1:%d" % other in text
                and "127.0.0.1:%d" % port in text,
                "the error names listener and addresses:\n%s" % text)
    s.close()
    s = listener(W.free_port(), False)
    d = ActivatedWeftd(config(port), [s], ["nosuch"])
    with d:
        W.wait_for(lambda: d.poll() is not None, W.EXIT_TIMEOUT,
                   "weftd to refuse a socket of no listener")
        text = d.log_text()
        W.check(d.poll() == 1, "exit status %r" % d.poll())
        W.check("'nosuch'" in text and "matches no listener" in text,
                "the error names the socket:\n%s" % text)
    # LISTEN_FDNAMES naming more sockets than LISTEN_FDS.
    d = ActivatedWeftd(config(port), [s], ["echo", "more"])
    with d:
        W.wait_for(lambda: d.poll() is not None, W.EXIT_TIMEOUT,
                   "weftd to refuse LISTEN_FDNAMES")
        W.check(d.poll() == 1 and "LISTEN_FDNAMES" in d.log_text(),
                "exit %r:\n%s" % (d.poll(), d.log_text()))
    s.close()


def test_activation_unnamed():
    """Without LISTEN_FDNAMES a passed socket goes to the listener of its
    address."""
    port = W.free_port()
    s = listener(port, False)
    with ActivatedWeftd(config(port), [s], None) as d:
        d.wait_workers(WORKERS)
        W.echo_roundtrip(port, b"matched by address\n")
        n = W.listening_sockets(port)
        W.check(n == 1, "%d LISTEN sockets:\n%s" % (n, W.ss_dump(port)))
        d.stop()
    s.close()


def test_activation_other_user():
    """ReusePort=yes, but weftd runs as another user than the socket's
    creator (a system unit with User=): the kernel will not let it join
    the group, so it warns and every worker shares the passed socket."""
    if os.getuid() != 0:
        W.log("not root: the other-user case is not tested")
        return
    nobody = 65534
    port = W.free_port()
    s = listener(port, True)
    ino = os.fstat(s.fileno()).st_ino
    d = ActivatedWeftd(config(port), [s], ["echo"], uid=nobody)
    os.chmod(d.tmpdir, 0o777)           # its control socket goes there
    with d:
        d.wait_workers(WORKERS)
        W.echo_roundtrip(port, b"another user\n")
        n = W.listening_sockets(port)
        W.check(n == 1, "%d LISTEN sockets:\n%s" % (n, W.ss_dump(port)))
        W.check("cannot join the reuseport group" in d.log_text(),
                "the fallback is logged:\n%s" % d.log_text())
        for w in d.workers():
            W.check(ino in socket_inodes(w), "worker %d shares it" % w)
        d.stop()
    s.close()


def main():
    test_notify()
    test_activation(False)
    test_activation(True)
    test_activation_refused()
    test_activation_unnamed()
    test_activation_other_user()


if __name__ == "__main__":
    W.run(main)
