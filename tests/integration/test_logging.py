"""Logging: the log group (file, level, syslog), reopen after a rename,
whole lines from several processes, and the errors weftd -t reports.

1. log.level = "warn": a SIGKILLed worker's warn line is there, no info
   or debug line is; a reload to level "debug" makes the new workers log
   proxy upstream failures at debug and the supervisor log at info again.
2. log.file renamed, then `weftctl reopen`: new supervisor and worker
   lines go to a new file at the path; the renamed file ends with a whole
   line.
3. Two workers log a few thousand debug lines at once (a proxy whose
   upstreams all refuse): every line of the file parses with the line
   format and both workers' pids are there.
4. syslog = true: if /dev/log does not exist and we are root, a datagram
   socket is bound there for the test (and removed after); lines arrive with
   facility daemon, the level's priority and ident weftd. Otherwise this
   part is skipped with a message (the rest still runs).
5. weftd -t refuses an unknown level, log_file with log.file, a log that is
   not a group, an unknown key and a non-boolean syslog, at FILE:LINE; the
   deprecated log_file alone is accepted.

Synchronisation: wait_for() on the log file's content, the workers' pids
and the control socket's generation; no sleeps.
"""

import os
import re
import signal
import socket
import stat
import sys
import threading

sys.dont_write_bytecode = True    # no __pycache__ in the source tree
import weftlib as W  # noqa: E402

LINE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "
                     r"(debug|info|warn|error) +\[(\d+) (sup|w\d+)\] \S.*$")
LEVEL_RE = re.compile(r"^\S+ (debug|info|warn|error) ")


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def levels(text):
    return {m.group(1) for m in map(LEVEL_RE.match, text.splitlines()) if m}


def config(port, proxy_port, closed, log, workers=2):
    ups = ", ".join('"127.0.0.1:%d"' % p for p in closed)
    return """
workers = %d;
log = { %s };
listeners = (
  { name = "echo"; listen = "127.0.0.1:%d"; protocol = "echo"; },
  { name = "px"; listen = "127.0.0.1:%d"; protocol = "proxy";
    proxy = { upstreams = (%s); connect_timeout = 2000; }; }
);
""" % (workers, log, port, proxy_port, ups)


def reload_to(d, text, gen):
    with open(d.config_path, "w") as f:
        f.write(text)
    sock = os.path.join(d.tmpdir, "weft.sock")
    rc, out, err = W.weftctl(sock, "reload")
    W.check(rc == 0, "reload: exit %s: %s %s" % (rc, out, err))
    W.wait_for(lambda: W.ctl_json(sock, "workers")["generation"] == gen, 15,
               "generation %d" % gen)


def poke_proxy(port, n=1):
    """Open n connections to the proxy; each is closed by weftd once no
    upstream answers."""
    for _ in range(n):
        s = socket.create_connection((W.LOOPBACK, port), timeout=W.IO_TIMEOUT)
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass
        s.close()


def test_levels(tmp):
    port, pport = W.free_port(), W.free_port()
    closed = [W.free_port()]
    log = os.path.join(tmp, "levels.log")
    text = config(port, pport, closed, 'file = "%s"; level = "warn";' % log)
    with W.Weftd(text, tmpdir=tmp, name="levels") as d:
        pids = d.wait_workers(2)
        d.wait_tcp(port)
        poke_proxy(pport, 4)
        victim = sorted(pids)[0]
        os.kill(victim, signal.SIGKILL)
        W.wait_for(lambda: "(pid %d) killed by signal 9" % victim in read(log),
                   10, "the warn line of the killed worker")
        d.wait_workers(2)
        got = levels(read(log))
        W.check(got == {"warn"}, "level warn: levels in the log %r" % got)
        W.log("ok   1: level warn: the worker's death logged, no info/debug")

        text = text.replace('level = "warn"', 'level = "debug"')
        reload_to(d, text, 2)
        W.wait_for(lambda: " info " in read(log), 10,
                   "info lines after the reload to debug")
        poke_proxy(pport, 4)
        W.wait_for(lambda: re.search(r" debug \[\d+ w\d+\] proxy: upstream ",
                                     read(log)), 10,
                   "debug lines of the new workers")
        W.log("ok   2: reload to level debug: info and debug lines")


def test_reopen(tmp):
    port, pport = W.free_port(), W.free_port()
    log = os.path.join(tmp, "reopen.log")
    text = config(port, pport, [W.free_port()],
                  'file = "%s"; level = "debug";' % log)
    with W.Weftd(text, tmpdir=tmp, name="reopen") as d:
        d.wait_workers(2)
        d.wait_tcp(port)
        sock = os.path.join(tmp, "weft.sock")
        os.rename(log, log + ".1")
        rc, out, err = W.weftctl(sock, "reopen")
        W.check(rc == 0, "weftctl reopen: %s %s" % (rc, err))
        W.wait_for(lambda: "log file reopened" in read(log), 10,
                   "the supervisor's line in the new file")

        def worker_line():
            poke_proxy(pport)
            return re.search(r"\[\d+ w\d+\] proxy: upstream ", read(log))
        W.wait_for(worker_line, 10, "a worker's line in the new file")
        old = read(log + ".1")
        W.check(old.endswith("\n"), "the renamed file ends with a partial "
                "line: %r" % old[-200:])
        bad = [l for l in old.splitlines() + read(log).splitlines()
               if not LINE_RE.match(l)]
        W.check(not bad, "lines that do not parse: %r" % bad[:5])
        W.log("ok   3: renamed + weftctl reopen: supervisor and worker "
              "lines in the new file, whole lines in the old one")


def test_interleave(tmp):
    port, pport = W.free_port(), W.free_port()
    closed = [W.free_port() for _ in range(8)]
    log = os.path.join(tmp, "load.log")
    text = config(port, pport, closed, 'file = "%s"; level = "debug";' % log)
    with W.Weftd(text, tmpdir=tmp, name="load") as d:
        workers = d.wait_workers(2)
        d.wait_tcp(port)
        errors = []

        def client():
            try:
                poke_proxy(pport, 100)
            except OSError as e:
                errors.append(e)
        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        W.check(not any(t.is_alive() for t in threads), "clients stuck")
        W.check(not errors, "client errors: %r" % errors[:3])
        want = 400 * len(closed)

        def enough():
            return read(log).count("proxy: upstream ") >= want
        W.wait_for(enough, 30, "%d upstream failure lines" % want)
        lines = read(log).splitlines()
        bad = [l for l in lines if not LINE_RE.match(l)]
        W.check(not bad, "%d lines of %d do not parse, e.g. %r"
                % (len(bad), len(lines), bad[:3]))
        pids = {int(m.group(2)) for m in map(LINE_RE.match, lines)
                if m and "proxy: upstream " in m.group(0)}
        W.check(set(workers) <= pids, "lines of workers %r, want %r"
                % (sorted(pids), sorted(workers)))
        W.log("ok   4: %d lines from 2 workers at once, all whole"
              % len(lines))


def bind_dev_log():
    """A datagram socket at /dev/log, or None (and why) when we must not
    or cannot make one."""
    if os.path.exists("/dev/log") or os.path.islink("/dev/log"):
        return None, "/dev/log exists (a real syslog we cannot read)"
    if os.geteuid() != 0:
        return None, "no /dev/log and not root to make one"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.bind("/dev/log")
    except OSError as e:
        s.close()
        return None, "cannot bind /dev/log: %s" % e
    s.settimeout(0.2)
    # The file's identity: fstat of a socket names the socket, not it.
    st = os.lstat("/dev/log")
    return (s, (st.st_dev, st.st_ino)), None


def unbind_dev_log(made):
    """Remove /dev/log only if it is still the socket file we made."""
    s, ident = made
    try:
        st = os.lstat("/dev/log")
        if stat.S_ISSOCK(st.st_mode) and (st.st_dev, st.st_ino) == ident:
            os.unlink("/dev/log")
    except OSError:
        pass
    s.close()


def test_syslog(tmp):
    made, why = bind_dev_log()
    if made is None:
        W.log("SKIP 5: syslog not checked: %s" % why)
        return
    try:
        check_syslog(tmp, made[0])
    finally:
        unbind_dev_log(made)
    W.check(not os.path.exists("/dev/log"), "/dev/log left behind")


def check_syslog(tmp, s):
    port, pport = W.free_port(), W.free_port()
    log = os.path.join(tmp, "syslog.log")
    text = config(port, pport, [W.free_port()],
                  'file = "%s"; syslog = true;' % log, workers=1)
    got = []

    def has(pattern):
        try:
            got.append(s.recv(65536).decode("utf-8", "replace"))
        except socket.timeout:
            pass
        return any(re.search(pattern, g) for g in got)
    with W.Weftd(text, tmpdir=tmp, name="syslog") as d:
        pids = d.wait_workers(1)
        # daemon (3) * 8 + info (6) = 30; warning (4): 28.
        W.wait_for(lambda: has(r"^<30>.*weftd\[%d\]: info +\[%d sup\] "
                               % (d.pid, d.pid)), 10, "an info line of the "
                   "supervisor in syslog")
        victim = list(pids)[0]
        os.kill(victim, signal.SIGKILL)
        W.wait_for(lambda: has(r"^<28>.*weftd\[%d\]: warn .*killed by "
                               r"signal 9" % d.pid), 10, "the warn line in "
                   "syslog")
        W.wait_for(lambda: "killed by signal 9" in read(log), 10,
                   "the same line in the log file")
    W.log("ok   5: syslog: daemon facility, info and warning priorities, "
          "ident weftd; the file has the lines too")


def test_check(tmp):
    port = W.free_port()
    cases = [
        ("level", ['log = {', '  level = "verbose";', '};'], 2,
         r"level 'verbose': expected"),
        ("both", ['log_file = "/tmp/a.log";', 'log = { file = "/tmp/b.log"; };'],
         1, r"log_file: a deprecated alias of log\.file"),
        ("group", ['log = "/tmp/a.log";'], 1, r"log: expected a group"),
        ("key", ['log = {', '  colour = true;', '};'], 2,
         r"unknown key 'colour' in log"),
        ("syslog", ['log = {', '  syslog = "yes";', '};'], 2,
         r"syslog: expected true or false"),
    ]
    listeners = ['listeners = ( { name = "e"; listen = "127.0.0.1:%d"; '
                 'protocol = "echo"; } );' % port]
    for name, lines, line, pattern in cases:
        path = os.path.join(tmp, "check-%s.conf" % name)
        with open(path, "w") as f:
            f.write("# padding\n# padding\n" + "\n".join(lines + listeners)
                    + "\n")
        rc, out, err = W.run_weftd(["-t", "-c", path], tmp, name=name)
        W.check(rc != 0, "%s: weftd -t accepted it" % name)
        want = r"%s:%d: .*%s" % (re.escape(path), line + 2, pattern)
        W.check(re.search(want, err), "%s: want %r in %r" % (name, want, err))
    for name, top in (("alias", 'log_file = "%s";'), ("group-ok",
                      'log = { file = "%s"; level = "error"; '
                      'syslog = false; };')):
        path = os.path.join(tmp, "check-%s.conf" % name)
        with open(path, "w") as f:
            f.write(top % os.path.join(tmp, "x.log") + "\n" + listeners[0]
                    + "\n")
        rc, out, err = W.run_weftd(["-t", "-c", path], tmp, name=name)
        W.check(rc == 0, "%s refused: %s" % (name, err))
    W.log("ok   6: weftd -t: bad log settings refused at FILE:LINE; "
          "log_file alone and a full log group accepted")


def main():
    tmp = W.make_tmpdir()
    test_check(tmp)
    test_levels(tmp)
    test_reopen(tmp)
    test_interleave(tmp)
    test_syslog(tmp)


if __name__ == "__main__":
    W.run(main, timeout=300)
