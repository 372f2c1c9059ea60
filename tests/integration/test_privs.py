"""Least privilege and limits: user, group, rlimit_nofile, worker_core_dumps.

Needs root (CI runs the tests as root); skipped otherwise.

  1. `weftd -t` refuses user = "no-such-user" (and a group that does not
     exist) with FILE:LINE.
  2. weftd started as root with user = "nobody", 2 workers, an echo
     listener on a port below 1024 and a chat listener: every worker's
     Uid:/Gid: (all four fields) are nobody's, Groups: holds only
     nobody's groups, NoNewPrivs is 1, RLIMIT_NOFILE is rlimit_nofile
     (/proc/PID/limits); the supervisor stays uid 0; the low port echoes;
     two chat clients on different workers exchange a room message (the
     bus wake-up signal crosses workers after the drop); /proc/W/environ
     is owned by root (not dumpable: setuid cleared it).
  3. `weftctl reload` with worker_core_dumps = true: the new workers are
     nobody too, and their /proc/W/environ is owned by nobody (dumpable).
  4. rlimit_nofile above the hard limit, weftd run as nobody with the
     hard limit lowered: the clear error naming the hard limit, exit 1.
     As root, above fs.nr_open: an error naming it, exit 1. As nobody
     with user = "root": "user requires starting as root", exit 1.
  5. log_file belongs to nobody (at start and after weftctl reopen): a
     worker reopens it after a rotation (its last line, at a reload, is
     in the new file).

Synchronisation: every wait is a condition polled with a deadline.
"""

import os
import pwd
import random
import resource
import socket
import subprocess
import sys

sys.dont_write_bytecode = True    # no __pycache__ in the source tree
import weftlib as W  # noqa: E402


def status_fields(pid):
    """{key: value} of /proc/PID/status."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def nofile_soft(pid):
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    raise W.TestFailure("no 'Max open files' in /proc/%d/limits" % pid)


def low_port():
    """A free TCP port in 600..1000 (root only can bind it)."""
    ports = list(range(600, 1001))
    random.shuffle(ports)
    for p in ports:
        if W.port_bindable(p):
            return p
    raise W.Skip("no free TCP port in 600..1000")


def check_nobody(pid, nobody, groups):
    st = status_fields(pid)
    uid = "\t".join([str(nobody.pw_uid)] * 4)
    gid = "\t".join([str(nobody.pw_gid)] * 4)
    W.check(st["Uid"].split() == uid.split(),
            "worker %d Uid: %r, want %r" % (pid, st["Uid"], uid))
    W.check(st["Gid"].split() == gid.split(),
            "worker %d Gid: %r, want %r" % (pid, st["Gid"], gid))
    W.check(set(st["Groups"].split()) <= groups,
            "worker %d Groups: %r, want within %r" % (pid, st["Groups"],
                                                      groups))
    W.check(st.get("NoNewPrivs") == "1",
            "worker %d NoNewPrivs: %r" % (pid, st.get("NoNewPrivs")))


def environ_owner(pid):
    return os.stat("/proc/%d/environ" % pid).st_uid


class Chat:
    """A chat client: lines in, lines out, each read with a deadline."""

    def __init__(self, port):
        self.s = socket.create_connection((W.LOOPBACK, port),
                                          timeout=W.IO_TIMEOUT)
        self.buf = b""
        W.check(self.line() == "HELLO weft-chat", "chat greeting")

    def line(self):
        while b"\n" not in self.buf:
            got = self.s.recv(4096)
            W.check(got, "chat: connection closed")
            self.buf += got
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode().rstrip("\r")

    def until(self, want):
        seen = []
        while True:
            line = self.line()
            if line == want:
                return
            seen.append(line)
            W.check(len(seen) < 50, "chat: no %r in %r" % (want, seen))

    def cmd(self, text, want):
        self.s.sendall(text.encode() + b"\n")
        self.until(want)


def chat_on_both(sock, port):
    """Clients until each of the 2 workers holds one: {slot: client}."""
    on, extra = {}, []
    for _ in range(40):
        c, slot = W.connect_on_slot(sock, lambda: Chat(port),
                                    "the new chat client")
        if slot in on:
            extra.append(c)
        else:
            on[slot] = c
        if len(on) == 2:
            return on, extra
    raise W.TestFailure("40 chat clients, all on worker(s) %r" % list(on))


def test_chat(sock, port):
    on, extra = chat_on_both(sock, port)
    a, b = on[0], on[1]
    a.cmd("NICK alice", "OK NICK alice")
    b.cmd("NICK bob", "OK NICK bob")
    a.cmd("JOIN #r", "OK JOIN #r")
    b.cmd("JOIN #r", "OK JOIN #r")
    a.until("JOIN #r bob")          # bob's join crossed the bus
    a.s.sendall(b"MSG #r hello from worker 0\n")
    b.until("MSG #r alice hello from worker 0")
    b.s.sendall(b"MSG #r hello from worker 1\n")
    a.until("MSG #r bob hello from worker 1")
    for c in [a, b] + extra:
        c.s.close()
    W.wait_for(lambda: sum(W.active_by_slot(sock).values()) == 0, 10.0,
               "the chat clients gone")
    W.log("chat: a room message crossed the workers both ways as nobody")


CONF = """
workers = 2;
cpu_affinity = false;
shutdown_timeout = 2;
user = "nobody";
rlimit_nofile = %(nofile)d;
worker_core_dumps = %(dumps)s;
listeners = (
  { name = "low"; listen = "127.0.0.1:%(low)d"; protocol = "echo"; },
  { name = "chat"; listen = "127.0.0.1:%(chat)d"; protocol = "chat"; }
);
"""


def check_config_errors():
    d = W.make_tmpdir()
    for text, line, what in (
            ('workers = 1;\nuser = "no-such-user";\n', 2,
             "no user named 'no-such-user'"),
            ('user = "nobody";\n\ngroup = "no-such-group";\n', 3,
             "no group named 'no-such-group'")):
        path = os.path.join(d, "bad.conf")
        with open(path, "w") as f:
            f.write(text + 'listeners = ({ name = "e"; listen = '
                    '"127.0.0.1:%d"; protocol = "echo"; });\n'
                    % W.free_port())
        rc, out, err = W.run_weftd(["-t", "-c", path], d, name="check")
        want = "%s:%d:" % (path, line)
        W.check(rc != 0 and want in err and what in err,
                "weftd -t: rc %s, stderr %r; want %r and %r"
                % (rc, err, want, what))
    W.log("1: unknown user and group refused with FILE:LINE")


def run_as_nobody(conf_text, nobody, hard=None):
    """weftd -c (a config) as nobody, hard limit lowered: (rc, stderr)."""
    d = W.make_tmpdir()
    os.chmod(d, 0o755)
    path = os.path.join(d, "n.conf")
    with open(path, "w") as f:
        f.write(conf_text)
    os.chmod(path, 0o644)

    def demote():
        if hard is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        os.setgroups([])
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)
    p = subprocess.run([W.weftd_path(), "-c", path], cwd=d,
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, preexec_fn=demote,
                       start_new_session=True, timeout=30)
    return p.returncode, p.stderr.decode("utf-8", "replace")


def check_refusals(nobody):
    listener = ('listeners = ({ name = "e"; listen = "127.0.0.1:%d"; '
                'protocol = "echo"; });\n' % W.free_port())
    rc, err = run_as_nobody("rlimit_nofile = 513;\n" + listener, nobody,
                            hard=512)
    want = ("rlimit_nofile 513: the hard limit is 512 (raise it as root or "
            "in the service unit)")
    W.check(rc == 1 and want in err, "rlimit above the hard limit: rc %s, "
            "stderr %r" % (rc, err))
    rc, err = run_as_nobody('user = "root";\n' + listener, nobody)
    W.check(rc == 1 and "user requires starting as root" in err,
            "user = root as nobody: rc %s, stderr %r" % (rc, err))
    with open("/proc/sys/fs/nr_open") as f:
        nr_open = int(f.read())
    d = W.make_tmpdir()
    path = os.path.join(d, "big.conf")
    with open(path, "w") as f:
        f.write("rlimit_nofile = %d;\n" % (nr_open + 1) + listener)
    rc, out, err = W.run_weftd(["-c", path], d, name="big")
    W.check(rc == 1 and "fs.nr_open (%d)" % nr_open in err,
            "rlimit above nr_open as root: rc %s, stderr %r" % (rc, err))
    W.log("4: rlimit above the hard limit, above fs.nr_open, and user "
          "without root: refused, exit 1")


LOG_CONF = """
workers = 1;
cpu_affinity = false;
shutdown_timeout = 2;
user = "nobody";
log_file = "%(log)s";
listeners = (
  { name = "e"; listen = "127.0.0.1:%(port)d"; protocol = "echo"; }
);
"""


def test_log_reopen(nobody):
    """log_file is nobody's: a worker reopens it after a rotation."""
    d = W.make_tmpdir()
    os.chmod(d, 0o755)       # the worker reopens the file by its path
    log_path = os.path.join(d, "weft.log")
    port = W.free_port()
    with W.Weftd(LOG_CONF % {"log": log_path, "port": port},
                 tmpdir=d) as w:
        old = list(w.wait_workers(1))[0]
        w.wait_tcp(port)
        W.check(os.stat(log_path).st_uid == nobody.pw_uid,
                "log_file owned by %d, not nobody" % os.stat(log_path).st_uid)
        os.rename(log_path, log_path + ".1")
        sock = os.path.join(d, "weft.sock")
        W.ctl_json(sock, "reopen")
        W.wait_for(lambda: os.path.exists(log_path), 10.0, "the new log")
        W.check(os.stat(log_path).st_uid == nobody.pw_uid,
                "reopened log_file owned by %d" % os.stat(log_path).st_uid)
        # The worker logs "stopping" when a reload replaces it: into the
        # new file if it could reopen it as nobody, else into the old one.
        W.ctl_json(sock, "reload")
        mark = "[%d w0] worker_main: worker 0 stopping" % old

        def logged():
            with open(log_path) as f:
                return mark in f.read()
        try:
            W.wait_for(logged, 15.0, "the old worker's last line in the "
                       "reopened log")
        except W.TestFailure:
            with open(log_path + ".1") as f:
                raise W.TestFailure("not in the new log; the old one "
                                    "ends:\n%s" % f.read()[-1500:])
        w.stop(limit=10.0)
    W.log("5: log_file is nobody's; a worker reopened it after rotation")


def wait_new_workers(d, old):
    def fresh():
        w = d.workers()
        return w if len(w) == 2 and not set(w) & set(old) else None
    return W.wait_for(fresh, W.STARTUP_TIMEOUT, "2 new workers")


def test():
    if os.geteuid() != 0:
        raise W.Skip("needs root: the workers drop to user = \"nobody\"")
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        raise W.Skip("no user 'nobody'")
    groups = {str(nobody.pw_gid)} | {
        str(g) for g in os.getgrouplist("nobody", nobody.pw_gid)}
    check_config_errors()

    # weftd starts with a soft limit of 1024 and raises it (within the
    # hard limit: root in a container may lack CAP_SYS_RESOURCE).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    W.check(hard == resource.RLIM_INFINITY or hard >= 1100,
            "hard RLIMIT_NOFILE %d: too low for the test" % hard)
    nofile = 2024 if hard == resource.RLIM_INFINITY else min(hard, 2024)
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    params = {"nofile": nofile, "dumps": "false", "low": low_port(),
              "chat": W.free_port()}
    with W.Weftd(CONF % params) as d:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        old = d.wait_workers(2)
        d.wait_tcp(params["low"])
        sock = os.path.join(d.tmpdir, "weft.sock")
        W.check(status_fields(d.pid)["Uid"].split()[0] == "0",
                "the supervisor is not uid 0")
        for pid in old:
            check_nobody(pid, nobody, groups)
            W.check(nofile_soft(pid) == nofile, "worker %d: Max open files "
                    "%d, want %d" % (pid, nofile_soft(pid), nofile))
            W.check(environ_owner(pid) == 0, "worker %d: /proc/PID/environ "
                    "owned by %d: dumpable without worker_core_dumps"
                    % (pid, environ_owner(pid)))
        W.echo_roundtrip(params["low"], b"low port\n")
        W.log("2: workers %r are nobody, NoNewPrivs, not dumpable, "
              "%d descriptors; port %d echoes" % (sorted(old), nofile,
                                                  params["low"]))
        test_chat(sock, params["chat"])

        params["dumps"] = "true"
        with open(d.config_path, "w") as f:
            f.write(CONF % params)
        W.ctl_json(sock, "reload")
        new = wait_new_workers(d, old)
        for pid in new:
            check_nobody(pid, nobody, groups)
            W.check(environ_owner(pid) == nobody.pw_uid,
                    "worker %d: /proc/PID/environ owned by %d with "
                    "worker_core_dumps" % (pid, environ_owner(pid)))
        W.echo_roundtrip(params["low"], b"after reload\n")
        W.log("3: after reload, workers %r are nobody and dumpable"
              % sorted(new))
        d.stop(limit=10.0)
    check_refusals(nobody)
    test_log_reopen(nobody)


if __name__ == "__main__":
    W.run(test, timeout=150)
