"""Third-party modules, built out of tree against an installed weft.

  * `make install DESTDIR=<tmp>` of this build installs weft.h, framing.h
    and weft.pc; with PKG_CONFIG_PATH and PKG_CONFIG_SYSROOT_DIR (the .pc
    names the final prefix), `pkg-config --cflags weft` points into the
    staged tree, and `--libs` is empty;
  * the rot13 example is built with its own Makefile, output in the tmp
    dir (O=...), leaving the source tree untouched (read-only under make
    distcheck); the example protocol of weft-protocol(3) is extracted from
    the man page and built too; the shipped example weft.conf passes -t;
  * weftd runs both modules: rot13 (greeting, several lines per send,
    sends split anywhere and byte by byte, CRLF, every byte value, a 4 MB
    pipelined burst that forces pause/resume, a line at max_line, a line
    above it and an endless line: error line, then EOF), rot13 without
    settings (no greeting, max_line 1024), time (one ISO 8601 UTC line
    near our clock, then EOF) and the man page's number protocol;
  * refused, at -t and at start, with "FILE:LINE: module PATH: reason": a
    module built with WEFT_ABI_VERSION + 1 (both versions named), a .so
    without the weft_module symbol, a path that does not exist; and bad
    rot13 settings at the line of the key.

Synchronisation: builds and `weftd -t` runs are waited for (with
timeouts); the daemon is polled until each listener answers; every
exchange reads until an expected length or EOF, with deadlines (our side
half-closes so that EOF marks the end of the answers).  Skips (77) only
when no C compiler is found.
"""

import datetime
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True    # no __pycache__ in the source tree
import weftlib as W  # noqa: E402

BUILD_TIMEOUT = 300.0
GREETING = b"rot13 ready\n"
ROT13 = bytes.maketrans(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
    b"NOPQRSTUVWXYZABCDEFGHIJKLMnopqrstuvwxyzabcdefghijklm")


def rot13(b):
    return b.translate(ROT13)


# --------------------------------------------------------------------------
# Building

def build_env():
    """Our environment without what a parent make passes to its children
    (a nested make must not inherit -n, -j or variable overrides) and
    without pkg-config settings, which each command sets itself."""
    env = dict(os.environ)
    for k in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES",
              "GNUMAKEFLAGS", "DESTDIR", "PKG_CONFIG_PATH",
              "PKG_CONFIG_SYSROOT_DIR", "PKG_CONFIG_LIBDIR"):
        env.pop(k, None)
    env["LC_ALL"] = "C"
    return env


def run_cmd(argv, logdir, name, env=None, cwd=None):
    """Run a build command to completion; its output goes to
    logdir/name.log. Returns the output; fails on a non-zero exit."""
    W.log("running %s" % " ".join(shlex.quote(a) for a in argv))
    path = os.path.join(logdir, "%s.log" % name)
    with open(path, "wb") as f:
        try:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=f,
                               stderr=subprocess.STDOUT, cwd=cwd,
                               env=env if env is not None else build_env(),
                               timeout=BUILD_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise W.TestFailure("%s did not finish within %.0f s"
                                % (argv[0], BUILD_TIMEOUT))
    with open(path, "rb") as f:
        out = f.read().decode("utf-8", "replace")
    W.check(p.returncode == 0, "%s failed (exit %d):\n%s"
            % (" ".join(argv), p.returncode, out[-4000:]))
    return out


def find_file(top, name):
    for d, _, files in os.walk(top):
        if name in files:
            return os.path.join(d, name)
    raise W.TestFailure("no %s under %s after make install" % (name, top))


def tree_state(top):
    """{relative path: (size, mtime_ns)} of every file under top."""
    out = {}
    for d, _, files in os.walk(top):
        for f in files:
            p = os.path.join(d, f)
            st = os.stat(p)
            out[os.path.relpath(p, top)] = (st.st_size, st.st_mtime_ns)
    return out


def man_example(path):
    """The C program between the example-begin and example-end comments of
    a man page, with roff's escapes turned back into characters."""
    with open(path) as f:
        lines = f.read().splitlines()
    try:
        begin = next(i for i, l in enumerate(lines)
                     if l.startswith('.\\" example-begin'))
        end = next(i for i, l in enumerate(lines)
                   if l.startswith('.\\" example-end'))
    except StopIteration:
        raise W.TestFailure("%s: no example-begin/example-end comments"
                            % path)
    escapes = {"\\-": "-", "\\e": "\\", "\\&": "", "\\(aq": "'",
               "\\(dq": '"'}
    out = []
    for n, line in enumerate(lines[begin + 1:end], begin + 2):
        W.check(not line.startswith((".", "'")),
                "%s:%d: roff request inside the example" % (path, n))
        for m in re.finditer(r"\\(\(..|.)", line):
            W.check(m.group(0) in escapes, "%s:%d: escape %s not known "
                    "to the extractor" % (path, n, m.group(0)))
        out.append(re.sub(r"\\(\(aq|\(dq|-|e|&)",
                          lambda m: escapes[m.group(0)], line))
    return "\n".join(out) + "\n"


def abi_version(header):
    with open(header) as f:
        m = re.search(r"^#define WEFT_ABI_VERSION (\d+)$", f.read(), re.M)
    W.check(m is not None, "no WEFT_ABI_VERSION in %s" % header)
    return int(m.group(1))


# --------------------------------------------------------------------------
# Sockets

def connect(port):
    s = socket.create_connection((W.LOOPBACK, port), timeout=W.IO_TIMEOUT)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_exact(s, n, what):
    """Read exactly n bytes (fails on EOF or timeout first)."""
    got = bytearray()
    s.settimeout(W.IO_TIMEOUT)
    while len(got) < n:
        try:
            chunk = s.recv(n - len(got))
        except socket.timeout:
            raise W.TestFailure("%s: timed out with %d/%d bytes: %r"
                                % (what, len(got), n, bytes(got[-200:])))
        if not chunk:
            raise W.TestFailure("%s: EOF after %d/%d bytes: %r"
                                % (what, len(got), n, bytes(got[-200:])))
        got += chunk
    return bytes(got)


def read_to_eof(s, what, limit=1 << 24):
    got = bytearray()
    s.settimeout(W.IO_TIMEOUT)
    while True:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            raise W.TestFailure("%s: no EOF within %.0f s; got %d bytes: %r"
                                % (what, W.IO_TIMEOUT, len(got),
                                   bytes(got[-200:])))
        if not chunk:
            return bytes(got)
        got += chunk
        W.check(len(got) <= limit, "%s: more than %d bytes" % (what, limit))


def session(port, pieces, what):
    """Connect, send each piece on its own, half-close and return all that
    was received (a greeting first) until the server's EOF."""
    s = connect(port)
    try:
        for p in pieces:
            s.sendall(p)
        s.shutdown(socket.SHUT_WR)
        return read_to_eof(s, what)
    finally:
        s.close()


def expect(got, want, what):
    if got != want:
        i = W.first_difference(got, want)
        raise W.TestFailure("%s: %d bytes received, %d expected, first "
                            "difference at %d: got %r, expected %r"
                            % (what, len(got), len(want), i,
                               got[max(0, i - 40):i + 40],
                               want[max(0, i - 40):i + 40]))
    W.log("ok   %s (%d bytes)" % (what, len(got)))


def burst(port, data, want, what):
    """Send data while reading; first send without reading until the socket
    is full, so weftd has to pause the connection and resume it."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        # A small receive buffer: the replies pile up in weftd sooner.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        s.settimeout(W.IO_TIMEOUT)
        s.connect((W.LOOPBACK, port))
        W.check(read_exact(s, len(GREETING), what) == GREETING,
                "%s: no greeting" % what)
        s.setblocking(False)
        sent = 0
        view = memoryview(data)
        while sent < len(data):
            try:
                sent += s.send(view[sent:sent + 65536])
            except BlockingIOError:
                break
        # Our send blocks only once weftd has stopped reading: it paused
        # the connection, and resumes it as we read the replies.
        W.log("%s: %d of %d bytes sent before the socket was full%s"
              % (what, sent, len(data), "" if sent < len(data) else
                 " (the kernel buffered everything: no pause exercised)"))
        try:
            got = W.exchange(s, data, len(want), 4 * W.IO_TIMEOUT, sent=sent)
        except W.EchoError as e:
            raise W.TestFailure("%s: %s" % (what, e))
        expect(got, want, what)
    finally:
        s.close()


# --------------------------------------------------------------------------
# weftd -t

def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def config(modules, listeners, workers=2):
    """Config text; the modules line is line 3 (error messages point at
    it), listener entries follow one per line from line 5."""
    return ("# test_module.py\n"
            "workers = %d;\n"
            "modules = ( %s );\n"
            "listeners = (\n"
            "%s\n"
            ");\n" % (workers, ", ".join('"%s"' % m for m in modules),
                      ",\n".join(listeners)))


MODULES_LINE = 3


def listener(name, port, proto, extra=""):
    return ('  { name = "%s"; listen = "127.0.0.1:%d"; protocol = "%s";%s }'
            % (name, port, proto, extra))


def refused(tmp, name, text, where, *needles, start=False):
    """weftd -t (or a plain start) on text must exit 1 with an error line
    that starts with `where` and contains every needle; returns stderr."""
    path = write(os.path.join(tmp, "%s.conf" % name), text)
    args = ["-c", path] if start else ["-t", "-c", path]
    rc, out, err = W.run_weftd(args, tmp, name=name)
    prefix = where % {"conf": path}
    line = next((l for l in err.splitlines() if l.startswith(prefix)), None)
    W.check(rc == 1 and line is not None,
            "%s: expected exit 1 and an error starting with %r; exit %s, "
            "stdout %r, stderr %r" % (name, prefix, rc, out, err))
    reason = line[len(prefix):]
    for n in needles:
        ok = n.search(reason) if hasattr(n, "search") else n in reason
        W.check(ok, "%s: %r not in the error %r"
                % (name, getattr(n, "pattern", n), line))
    W.log("ok   %s%s refused: %s" % (name, " (start)" if start else "",
                                     line))
    return err


def accepted(tmp, name, text):
    path = write(os.path.join(tmp, "%s.conf" % name), text)
    rc, out, err = W.run_weftd(["-t", "-c", path], tmp, name=name)
    W.check(rc == 0 and "configuration OK" in out,
            "%s: weftd -t: exit %s, stdout %r, stderr %r\nconfig:\n%s"
            % (name, rc, out, err, text))
    W.log("ok   %s: configuration OK" % name)


# --------------------------------------------------------------------------

def main():
    os.environ["LC_ALL"] = "C"      # dlerror() messages, for weftd too
    cc = W.find_cc()
    make = shutil.which("make") or shutil.which("gmake")
    W.check(make is not None, "no make found")
    pkgconf = shutil.which("pkg-config") or shutil.which("pkgconf")
    W.check(pkgconf is not None, "no pkg-config found")
    srcdir = os.environ.get("WEFT_SRCDIR") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..")
    srcdir = os.path.realpath(srcdir)
    # make check runs us in the build directory.
    builddir = os.getcwd()
    if not os.path.isfile(os.path.join(builddir, "Makefile")):
        builddir = os.path.dirname(W.weftd_path())
    W.check(os.path.isfile(os.path.join(builddir, "Makefile")),
            "no Makefile in the build directory (%s or next to weftd)"
            % os.getcwd())
    example = os.path.join(srcdir, "contrib", "examples", "rot13")
    tmp = W.make_tmpdir()
    stage = os.path.join(tmp, "stage")
    out = os.path.join(tmp, "out")
    W.log("cc %s, make %s, pkg-config %s, source %s, build %s"
          % (" ".join(cc), make, pkgconf, srcdir, builddir))

    # -- make install DESTDIR, pkg-config ----------------------------------
    run_cmd([make, "-C", builddir, "install", "DESTDIR=" + stage], tmp,
            "make-install")
    pc = find_file(stage, "weft.pc")
    header = find_file(stage, "weft.h")
    incdir = os.path.dirname(os.path.dirname(header))
    W.check(os.path.isfile(os.path.join(incdir, "weft", "framing.h")),
            "framing.h not installed next to %s" % header)
    pcdir = os.path.dirname(pc)
    pkg_env = build_env()
    pkg_env["PKG_CONFIG_PATH"] = pcdir
    plain = run_cmd([pkgconf, "--cflags", "weft"], tmp, "pc-plain",
                    env=pkg_env).split()
    pkg_env["PKG_CONFIG_SYSROOT_DIR"] = stage
    cflags = run_cmd([pkgconf, "--cflags", "weft"], tmp, "pc-sysroot",
                     env=pkg_env).split()
    libs = run_cmd([pkgconf, "--libs", "weft"], tmp, "pc-libs",
                   env=pkg_env).split()
    del pkg_env["PKG_CONFIG_SYSROOT_DIR"]
    defprefix = run_cmd([pkgconf, "--define-prefix", "--cflags", "weft"],
                        tmp, "pc-define-prefix", env=pkg_env).split()
    W.log("pkg-config --cflags weft: plain %r, with PKG_CONFIG_SYSROOT_DIR "
          "%r, with --define-prefix %r; --libs %r"
          % (plain, cflags, defprefix, libs))
    W.check(cflags == ["-I" + incdir], "pkg-config with "
            "PKG_CONFIG_SYSROOT_DIR=%s gives %r, expected ['-I%s']"
            % (stage, cflags, incdir))
    W.check(libs == [], "pkg-config --libs weft gives %r: a module links "
            "nothing" % libs)
    abi = abi_version(header)

    # -- the modules ---------------------------------------------------------
    before = tree_state(example)
    run_cmd([make, "-C", example, "O=" + out, "CC=" + " ".join(cc),
             "PKG_CONFIG=" + pkgconf, "PKG_CONFIG_PATH=" + pcdir,
             "PKG_CONFIG_SYSROOT_DIR=" + stage], tmp, "make-rot13")
    rot13_so = os.path.join(out, "rot13.so")
    W.check(os.path.isfile(rot13_so), "make O=%s made no rot13.so" % out)
    W.check(tree_state(example) == before, "building the example changed "
            "its source directory %s" % example)
    W.log("ok   rot13.so built in %s, %s unchanged" % (out, example))

    def module(name, source):
        c = write(os.path.join(out, name + ".c"), source)
        so = os.path.join(out, name + ".so")
        run_cmd(cc + ["-shared", "-fPIC"] + cflags +
                ["-Wall", "-Wextra", "-Werror", "-o", so, c], tmp,
                "cc-" + name)
        return so

    number_so = module("number", man_example(
        os.path.join(srcdir, "man", "weft-protocol.3")))
    abi_so = module("abi", "#include <weft/weft.h>\n"
                    "static const struct weft_protocol *const none[] = "
                    "{ NULL };\n"
                    "const struct weft_module weft_module = "
                    "{ .abi = WEFT_ABI_VERSION + 1, .name = \"future\", "
                    ".protocols = none };\n")
    nosym_so = module("nosym", "int not_a_weft_module = 1;\n")
    missing_so = os.path.join(out, "missing.so")

    # -- weftd -t ------------------------------------------------------------
    p = [W.free_port("tcp") for _ in range(4)]
    with open(os.path.join(example, "weft.conf")) as f:
        shipped = f.read()
    rel = '"contrib/examples/rot13/rot13.so"'
    W.check(rel in shipped, "the example weft.conf does not load %s" % rel)
    accepted(tmp, "shipped-example", shipped.replace(rel, '"%s"' % rot13_so))

    at = "%(conf)s:" + str(MODULES_LINE) + ": module "
    one = [listener("echo", p[0], "echo")]
    refused(tmp, "abi", config([abi_so], one), at + abi_so + ": ",
            re.compile(r"\b%d\b.*\b%d\b|\b%d\b.*\b%d\b"
                       % (abi + 1, abi, abi, abi + 1)), "ABI")
    refused(tmp, "abi-start", config([abi_so], one), at + abi_so + ": ",
            str(abi + 1), start=True)
    refused(tmp, "nosym", config([nosym_so], one), at + nosym_so + ": ",
            "weft_module")
    refused(tmp, "missing", config([missing_so], one),
            at + missing_so + ": ", re.compile("no such file", re.I))
    refused(tmp, "missing-start", config([missing_so], one),
            at + missing_so + ": ", re.compile("no such file", re.I),
            start=True)

    # The module's configure hook: errors at the line of the key.
    def rot13_group(body):
        return config([rot13_so], [
            listener("r", p[0], "rot13"),
            "  { name = \"r2\"; listen = \"127.0.0.1:%d\"; "
            "protocol = \"rot13\";\n"
            "    rot13 = { %s }; }" % (p[1], body)])
    key_line = "%(conf)s:7: listener r2: "
    refused(tmp, "max-line-string", rot13_group('max_line = "big";'),
            key_line, "rot13.max_line")
    refused(tmp, "max-line-zero", rot13_group("max_line = 0;"),
            key_line, "rot13.max_line")
    refused(tmp, "greeting-two-lines",
            rot13_group('greeting = "a\\nb";'), key_line, "rot13.greeting")
    refused(tmp, "unknown-key", rot13_group("colour = 1;"), key_line,
            "colour")
    # Both keys wrong: two errors, and no key reported as unknown.
    err = refused(tmp, "both-keys-wrong",
                  rot13_group('max_line = -1; greeting = 5;'), key_line,
                  "rot13.max_line")
    W.check("rot13.greeting" in err and "unknown" not in err,
            "both-keys-wrong: expected errors for max_line and greeting "
            "only, got %r" % err)

    # -- weftd running the modules -----------------------------------------
    conf = config([rot13_so, number_so], [
        listener("rot13", p[0], "rot13",
                 ' rot13 = { max_line = 64; greeting = "rot13 ready"; };'),
        listener("rot13-plain", p[1], "rot13"),
        listener("time", p[2], "time"),
        listener("number", p[3], "number", " number = { max_line = 100; };"),
    ])
    accepted(tmp, "live-check", conf)
    with W.Weftd(conf, tmpdir=tmp, name="live") as d:
        d.wait_workers(2)

        def answers(port, send, want):
            last = []

            def pred():
                W.check(d.running(), "weftd exited early with code %s"
                        % d.poll())
                try:
                    last[:] = [session(port, [send], "probe")]
                except (OSError, W.TestFailure) as e:
                    last[:] = [e]
                return last[0] == want
            try:
                W.wait_for(pred, W.STARTUP_TIMEOUT, "127.0.0.1:%d" % port)
            except W.TestFailure as e:
                raise W.TestFailure("%s to answer %r with %r; last: %r"
                                    % (e, send, want, last))
        answers(p[0], b"a\n", GREETING + b"n\n")
        answers(p[1], b"b\n", b"o\n")
        answers(p[3], b"c\n", b"1: c\n")

        rot13_live(p[0], p[1])
        time_live(p[2])

        expect(session(p[3], [b"one\ntwo\n", b"thr", b"ee\n"], "number"),
               b"1: one\n2: two\n3: three\n", "number: lines numbered")
        expect(session(p[3], [b"x" * 100 + b"\n" + b"y" * 101 + b"\n"],
                       "number"),
               b"1: " + b"x" * 100 + b"\nline too long\n",
               "number: line of 101 bytes refused")

        W.check(d.running(), "weftd exited with code %s" % d.poll())
        rc, _ = d.stop()
        W.check(rc == 0, "weftd exit code %s after SIGTERM" % rc)
    W.check(tree_state(example) == before, "the example's source directory "
            "changed during the test")


def rot13_live(port, plain_port):
    g = GREETING
    expect(session(port, [b"Hello, World!\nabc XYZ\n\n"], "rot13"),
           g + b"Uryyb, Jbeyq!\nnop KLM\n\n", "rot13: lines in one send")
    # Split anywhere; the unfinished last line is never answered.
    expect(session(port, [b"Hel", b"lo\nWor", b"ld\r", b"\n", b"tail"],
                   "rot13"),
           g + b"Uryyb\nJbeyq\r\n", "rot13: split sends, CRLF, no partial "
           "line")
    text = b"".join(b"Line %d of the Quick Brown Fox\n" % i
                    for i in range(20))
    expect(session(port, [text[i:i + 1] for i in range(len(text))],
                   "rot13"), g + rot13(text), "rot13: byte by byte")
    every = bytes(b for b in range(256) if b != 10)
    chunks = [every[i:i + 60] for i in range(0, len(every), 60)]
    expect(session(port, [c + b"\n" for c in chunks], "rot13"),
           g + b"".join(rot13(c) + b"\n" for c in chunks),
           "rot13: every byte value")

    # A burst far above the output queue's high watermark, pipelined.
    lines = [(b"%06d " % i) + b"abcdefghijklmnopqrstuvwxyz" * 2 + b"\n"
             for i in range(200000)]
    data = b"".join(lines)
    burst(port, data, rot13(data), "rot13: %d MB pipelined"
          % (len(data) >> 20))

    # max_line = 64: 64 bytes pass; 65 get the error line, then EOF, and
    # nothing after the long line is answered.
    err64 = b"error: line longer than 64 bytes\n"
    expect(session(port, [b"a" * 64 + b"\nok\n" + b"b" * 65 + b"\nnever\n"],
                   "rot13"),
           g + b"n" * 64 + b"\nbx\n" + err64, "rot13: max_line 64 and 65")
    # An endless line: refused before its end, without our FIN.
    s = connect(port)
    try:
        s.sendall(b"ab\n" + b"c" * 200)
        expect(read_to_eof(s, "rot13: endless line"), g + b"no\n" + err64,
               "rot13: line without end refused")
    finally:
        s.close()
    # Still serving.
    expect(session(port, [b"fine\n"], "rot13"), g + b"svar\n",
           "rot13: new connection after the errors")

    # Defaults: no greeting, max_line 1024.
    long_ok = b"q" * 1024 + b"\n"
    expect(session(plain_port, [b"Why did the chicken\n", long_ok,
                                b"r" * 1025 + b"\n"], "rot13-plain"),
           b"Jul qvq gur puvpxra\n" + rot13(long_ok) +
           b"error: line longer than 1024 bytes\n",
           "rot13 without settings: no greeting, max_line 1024")


def time_live(port):
    pat = re.compile(rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)\n$")
    for i in range(5):
        before = time.time()
        s = connect(port)
        try:
            got = read_to_eof(s, "time")
        finally:
            s.close()
        after = time.time()
        m = pat.match(got)
        W.check(m is not None, "time: %r is not one ISO 8601 UTC line"
                % got)
        t = datetime.datetime.strptime(m.group(1).decode(),
                                       "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()
        W.check(int(before) - 1 <= t <= after + 1, "time: %s is not within "
                "[%.1f, %.1f] (our clock)" % (m.group(1).decode(), before,
                                              after))
    W.log("ok   time: 5 connections, last %r" % got)


if __name__ == "__main__":
    W.run(main, timeout=120)
