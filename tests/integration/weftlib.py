"""Shared helpers for weft's integration tests (Python 3 standard library only).

Every test script is run by automake's harness as
``python3 SRCDIR/tests/integration/test_x.py`` with the build directory as the
current directory and WEFTD set to the absolute path of the daemon.  Exit codes:
0 pass, 1 fail, 77 skip.

Rules kept here so that each test does not have to:
  * servers bind 127.0.0.1 only, on ports picked at run time (free_port);
  * no sleep as synchronisation: wait_for() polls a condition with a deadline;
  * every weftd started is killed at the end (process group and every pid
    seen, plus any process whose command line names the test's unique config
    path), on success, failure, exception, SIGTERM/SIGHUP and on the script's
    own overall deadline (SIGALRM);
  * weftd's stderr goes to a file in a private temp directory, which is
    scanned for sanitizer reports at the end of every test;
  * weftd runs with that temp directory as its working directory, so its
    default control socket "weft.sock" is never shared with a parallel
    test (give weftd absolute paths for everything else).
"""

import os
import random
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

LOOPBACK = "127.0.0.1"
SKIP = 77

# Patterns that mean a sanitizer found something.
SANITIZER_PATTERNS = (
    "AddressSanitizer",
    "LeakSanitizer",
    "UndefinedBehaviorSanitizer",
    "runtime error:",
    "ThreadSanitizer",
    "MemorySanitizer",
)

# Deadlines: generous enough for a loaded 2-core machine running an
# ASan+UBSan build (several times slower); the limits that the contract names
# (1 s respawn, 2 s shutdown) are asserted separately, with measured times.
STARTUP_TIMEOUT = 20.0
EXIT_TIMEOUT = 15.0
IO_TIMEOUT = 10.0

WORKER_COMM_RE = re.compile(r"^weftd-w(\d+)$")


class TestFailure(Exception):
    """A test assertion failed."""


class Skip(Exception):
    """Something the test truly needs is unavailable (exit 77)."""


def log(msg):
    """Progress message on stdout (goes to the harness' .log file)."""
    sys.stdout.write("[%8.3f] %s\n" % (time.monotonic() - _T0, msg))
    sys.stdout.flush()


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


_T0 = time.monotonic()


# --------------------------------------------------------------------------
# Polling

def wait_for(pred, timeout, what, interval=0.005, max_interval=0.05):
    """Poll pred() until it returns a truthy value, which is returned.

    Raises TestFailure naming `what` if `timeout` seconds pass first.  The
    poll interval starts small and grows to max_interval; sleeping here is
    only the pause between polls, never a synchronisation by itself.
    """
    deadline = time.monotonic() + timeout
    delay = interval
    while True:
        val = pred()
        if val:
            return val
        now = time.monotonic()
        if now >= deadline:
            raise TestFailure("timed out after %.1f s waiting for %s"
                              % (timeout, what))
        time.sleep(min(delay, max(0.0, deadline - now)))
        delay = min(delay * 1.5, max_interval)


# --------------------------------------------------------------------------
# /proc helpers

def read_stat(pid):
    """Return (comm, state, ppid, pgrp, starttime_ticks) or None if gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read().decode("utf-8", "replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        return None
    lp = data.find("(")
    rp = data.rfind(")")
    if lp < 0 or rp < 0:
        return None
    comm = data[lp + 1:rp]
    rest = data[rp + 2:].split()
    # rest[0] = field 3 (state), rest[1] = ppid, rest[2] = pgrp,
    # rest[19] = field 22 (starttime, clock ticks since boot)
    try:
        return comm, rest[0], int(rest[1]), int(rest[2]), int(rest[19])
    except (IndexError, ValueError):
        return None


def read_comm(pid):
    try:
        with open("/proc/%d/comm" % pid, "rb") as f:
            return f.read().decode("utf-8", "replace").rstrip("\n")
    except OSError:
        return None


def read_cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return None


def pid_alive(pid):
    """True if pid exists and is not a zombie (a zombie has exited)."""
    st = read_stat(pid)
    return st is not None and st[1] not in ("Z", "X", "x")


def all_pids():
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            out.append(int(name))
    return out


def children(ppid):
    """Live (non-zombie) direct children of ppid: {pid: comm}.

    Scans /proc/*/stat: /proc/PID/task/TID/children is not available on every
    kernel and is documented as unreliable while tasks run.
    """
    out = {}
    for pid in all_pids():
        st = read_stat(pid)
        if st and st[2] == ppid and st[1] not in ("Z", "X", "x"):
            out[pid] = st[0]
    return out


def pids_with_arg(needle):
    """Live pids whose command line contains `needle` (bytes or str)."""
    if isinstance(needle, str):
        needle = needle.encode()
    me = os.getpid()
    out = []
    for pid in all_pids():
        if pid == me:
            continue
        args = read_cmdline(pid)
        if args and any(needle in a for a in args) and pid_alive(pid):
            out.append(pid)
    return out


CLK_TCK = os.sysconf("SC_CLK_TCK")


def boottime():
    """Seconds since boot, comparable with /proc/PID/stat starttime."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def start_time(pid):
    """Process start time in seconds since boot (resolution 1/CLK_TCK)."""
    st = read_stat(pid)
    return None if st is None else st[4] / CLK_TCK


# --------------------------------------------------------------------------
# Ports and sockets

def free_port(kind="tcp"):
    """Pick a free loopback port: kind is 'tcp', 'udp' or 'both'.

    Binds port 0, reads the port, closes.  For 'both', the same number must
    also be bindable in the other protocol; otherwise another is tried.
    A port is never handed out twice by one test: the kernel may give the
    same ephemeral number to two binds in a row once the first is closed,
    and a test asking for several ports needs distinct ones.
    """
    for _ in range(200):
        first = socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM
        s = socket.socket(socket.AF_INET, first)
        try:
            s.bind((LOOPBACK, 0))
            port = s.getsockname()[1]
        finally:
            s.close()
        if port in _ports_given:
            continue
        if kind != "both" or port_bindable(port, socket.SOCK_DGRAM):
            _ports_given.add(port)
            return port
    raise TestFailure("could not find a free %s port" % kind)


_ports_given = set()


def port_bindable(port, type_=socket.SOCK_STREAM, listen=True):
    """Plain bind (no SO_REUSEADDR/SO_REUSEPORT) of 127.0.0.1:port."""
    s = socket.socket(socket.AF_INET, type_)
    try:
        s.bind((LOOPBACK, port))
        if listen and type_ == socket.SOCK_STREAM:
            s.listen(1)
        return True
    except OSError:
        return False
    finally:
        s.close()


def tcp_answers(port, timeout=1.0):
    """True if a TCP connection to 127.0.0.1:port is accepted by the kernel."""
    try:
        s = socket.create_connection((LOOPBACK, port), timeout=timeout)
    except OSError:
        return False
    s.close()
    return True


class EchoError(Exception):
    """An echo exchange failed; .kind is one of: refused, reset, timeout,
    eof, mismatch, other."""

    def __init__(self, kind, msg):
        Exception.__init__(self, "%s: %s" % (kind, msg))
        self.kind = kind


def first_difference(a, b):
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def exchange(sock, data, want_len, timeout=IO_TIMEOUT, sent=0):
    """Send data[sent:] on a connected TCP socket while reading replies.

    Uses a selector so that payloads larger than the socket buffers cannot
    deadlock.  Returns the want_len bytes received; raises EchoError on a
    timeout, an early EOF, a reset or more bytes than wanted.
    """
    sock.setblocking(False)
    sel = selectors.DefaultSelector()
    view = memoryview(data)
    got = bytearray()
    deadline = time.monotonic() + timeout
    try:
        sel.register(sock, selectors.EVENT_READ |
                     (selectors.EVENT_WRITE if sent < len(data) else 0))
        while len(got) < want_len:
            left = deadline - time.monotonic()
            if left <= 0:
                raise EchoError("timeout", "sent %d/%d, received %d/%d bytes "
                                "after %.1f s" % (sent, len(data), len(got),
                                                  want_len, timeout))
            for key, mask in sel.select(min(left, 0.5)):
                if mask & selectors.EVENT_WRITE and sent < len(data):
                    try:
                        sent += sock.send(view[sent:sent + 262144])
                    except BlockingIOError:
                        pass
                    if sent == len(data):
                        sel.modify(sock, selectors.EVENT_READ)
                if mask & selectors.EVENT_READ:
                    try:
                        chunk = sock.recv(262144)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        raise EchoError("eof", "connection closed by peer "
                                        "after %d/%d bytes"
                                        % (len(got), want_len))
                    got += chunk
                    if len(got) > want_len:
                        raise EchoError("mismatch", "received %d bytes, more "
                                        "than the %d expected"
                                        % (len(got), want_len))
    except ConnectionResetError as e:
        raise EchoError("reset", str(e))
    except BrokenPipeError as e:
        raise EchoError("reset", str(e))
    finally:
        sel.close()
    return bytes(got)


def echo_exchange(sock, data, timeout=IO_TIMEOUT):
    """Send `data` on a connected TCP socket and check the echo; returns it
    or raises EchoError."""
    got = exchange(sock, data, len(data), timeout)
    if got != data:
        i = first_difference(got, data)
        raise EchoError("mismatch", "%d bytes: first difference at offset "
                        "%d" % (len(data), i))
    return got


def echo_roundtrip(port, data, timeout=IO_TIMEOUT):
    """New connection to 127.0.0.1:port, echo `data`, check, close."""
    try:
        s = socket.create_connection((LOOPBACK, port), timeout=timeout)
    except ConnectionRefusedError as e:
        raise EchoError("refused", str(e))
    except ConnectionResetError as e:
        raise EchoError("reset", str(e))
    except socket.timeout as e:
        raise EchoError("timeout", "connect: %s" % e)
    except OSError as e:
        raise EchoError("other", "connect: %s" % e)
    try:
        return echo_exchange(s, data, timeout)
    except OSError as e:
        raise EchoError("other", repr(e))
    finally:
        s.close()


def udp_roundtrip(port, data, timeout=2.0, attempts=3):
    """Send one datagram to 127.0.0.1:port and wait for the same bytes back.

    A retry uses a fresh socket so that a late reply to an earlier attempt
    cannot be mistaken for the answer.  Returns the number of retries used.
    Raises EchoError('timeout') if every attempt was lost and
    EchoError('mismatch') for wrong bytes or a wrong sender.
    """
    for attempt in range(attempts):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind((LOOPBACK, 0))
            s.settimeout(timeout)
            s.sendto(data, (LOOPBACK, port))
            try:
                reply, addr = s.recvfrom(65536)
            except socket.timeout:
                continue
            if addr != (LOOPBACK, port):
                raise EchoError("mismatch", "reply from %r, expected %r"
                                % (addr, (LOOPBACK, port)))
            if reply != data:
                raise EchoError("mismatch", "%d bytes sent, %d received, "
                                "first difference at offset %d"
                                % (len(data), len(reply),
                                   first_difference(reply, data)))
            return attempt
        finally:
            s.close()
    raise EchoError("timeout", "no reply to a %d-byte datagram after %d "
                    "attempts of %.1f s" % (len(data), attempts, timeout))


def have_ss():
    return shutil.which("ss") is not None


def _proc_net_sockets(proto, port):
    """Fallback when ss is missing: count sockets bound to 127.0.0.1:port in
    LISTEN (tcp) or unconnected (udp, state 07) from /proc/net/{tcp,udp}."""
    want_state = "0A" if proto == "tcp" else "07"
    local = "0100007F:%04X" % port
    n = 0
    with open("/proc/net/%s" % proto) as f:
        next(f)
        for line in f:
            fields = line.split()
            if len(fields) > 3 and fields[1] == local and \
                    fields[3] == want_state:
                n += 1
    return n


def listening_sockets(port, proto="tcp"):
    """Number of LISTEN (tcp) / UNCONN (udp) sockets on 127.0.0.1:port as
    reported by `ss -ltnH` / `ss -lunH` (or /proc/net if ss is missing)."""
    if not have_ss():
        return _proc_net_sockets(proto, port)
    flag = "-ltn" if proto == "tcp" else "-lun"
    out = subprocess.run(["ss", flag + "H"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, timeout=30)
    lines = out.stdout.decode().splitlines()
    if out.returncode != 0:     # an ss without -H: drop the header
        out = subprocess.run(["ss", flag], stdout=subprocess.PIPE,
                             timeout=30, check=True)
        lines = out.stdout.decode().splitlines()[1:]
    want = "%s:%d" % (LOOPBACK, port)
    n = 0
    for line in lines:
        fields = line.split()
        # State Recv-Q Send-Q Local-Address:Port Peer-Address:Port ...
        if len(fields) >= 4 and fields[3] == want:
            n += 1
    return n


def ss_dump(port):
    """All TCP/UDP sockets involving the port, for failure messages."""
    if not have_ss():
        return "(ss not installed)"
    out = subprocess.run(["ss", "-tuanp"], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, timeout=30)
    lines = out.stdout.decode("utf-8", "replace").splitlines()
    return "\n".join(l for l in lines[:1] + [l for l in lines
                                             if ":%d " % port in l])


# --------------------------------------------------------------------------
# Payloads

def make_rng(salt=0):
    """Seeded RNG; the seed is printed so a failure can be replayed with
    WEFT_TEST_SEED=<seed>."""
    seed = os.environ.get("WEFT_TEST_SEED")
    seed = int(seed) if seed else random.SystemRandom().randrange(1 << 32)
    if salt == 0:
        log("random seed %d (replay with WEFT_TEST_SEED=%d)" % (seed, seed))
    return random.Random(seed + salt)


def payload_sizes(rng, n, max_size):
    """n sizes: edge cases first, then log-uniform sizes in [1, max_size]."""
    edges = [1, 2, 3, 7, 8, 63, 64, 65, 511, 512, 513, 1023, 1024, 1025,
             1399, 1400, 1460, 1500, 4095, 4096, 4097, 8192, 16383, 16384,
             16385, 65535, 65536, 65537, 131072]
    sizes = [s for s in edges if s <= max_size][:n]
    while len(sizes) < n:
        sizes.append(max(1, min(max_size,
                                int(2 ** rng.uniform(0, max_size.bit_length())))))
    rng.shuffle(sizes)
    return sizes


# --------------------------------------------------------------------------
# The daemon

def weftd_path():
    path = os.environ.get("WEFTD")
    if not path:
        for cand in ("./weftd", os.path.join(os.getcwd(), "build", "weftd")):
            if os.access(cand, os.X_OK):
                path = os.path.abspath(cand)
                break
    if not path:
        raise TestFailure("WEFTD is not set and no ./weftd was found "
                          "(cwd %s)" % os.getcwd())
    if not os.access(path, os.X_OK):
        raise TestFailure("WEFTD=%s is not an executable file" % path)
    # weftd runs in its temp dir: a relative WEFTD would not be found there.
    return os.path.abspath(path)


def weftctl_path():
    """The control client: $WEFTCTL, else the weftctl next to weftd."""
    path = os.environ.get("WEFTCTL") or os.path.join(
        os.path.dirname(weftd_path()), "weftctl")
    if not os.access(path, os.X_OK):
        raise TestFailure("%s is not an executable file (set WEFTCTL or "
                          "build weftctl next to weftd)" % path)
    return os.path.abspath(path)


_INSTANCES = []          # every Weftd ever created by this script
_TMPDIRS = []


def make_tmpdir():
    d = os.path.realpath(tempfile.mkdtemp(prefix="weft-it-"))
    _TMPDIRS.append(d)
    return d


def run_weftd(args, tmpdir, timeout=60.0, name="run"):
    """Run weftd to completion (e.g. -t, -V); returns (rc, stdout, stderr).

    Output goes to files in tmpdir (scanned for sanitizer reports at the end).
    """
    out_path = os.path.join(tmpdir, "%s.stdout" % name)
    err_path = os.path.join(tmpdir, "%s.stderr" % name)
    inst = Weftd.__new__(Weftd)         # register for scanning and cleanup
    Weftd._init_fields(inst, tmpdir, name, None)
    inst.log_path = err_path
    inst.stdout_path = out_path
    _INSTANCES.append(inst)
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        # cwd: the default control socket "weft.sock" of each weftd lands
        # in its own temp dir, never shared with a parallel test.
        inst.proc = subprocess.Popen([weftd_path()] + list(args),
                                     stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=err, start_new_session=True,
                                     cwd=tmpdir)
        inst.pid = inst.proc.pid
        inst.seen.add(inst.pid)
        try:
            rc = inst.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            inst.kill_all()
            raise TestFailure("weftd %s did not exit within %.0f s"
                              % (" ".join(args), timeout))
    with open(out_path, "rb") as f:
        sout = f.read().decode("utf-8", "replace")
    with open(err_path, "rb") as f:
        serr = f.read().decode("utf-8", "replace")
    return rc, sout, serr


class Weftd:
    """One weftd started in the foreground from a config text.

    Use as a context manager (kill_all() on exit); kill_all() is also run for
    every instance at the end of the script, on signals and on the deadline.
    """

    _counter = 0

    def _init_fields(self, tmpdir, name, config_text):
        self.tmpdir = tmpdir
        self.name = name
        self.config_text = config_text
        self.proc = None
        self.pid = None
        self.seen = set()
        self.config_path = None
        self.log_path = None
        self.stdout_path = None
        self.supervisor_comm = None

    def __init__(self, config_text, args=(), tmpdir=None, name=None):
        Weftd._counter += 1
        name = name or "weftd%d" % Weftd._counter
        self._init_fields(tmpdir or make_tmpdir(), name, config_text)
        self.args = list(args)
        # The config path is unique per instance: it identifies this
        # instance's processes in /proc/*/cmdline.
        if os.path.exists(os.path.join(self.tmpdir, "%s.conf" % name)):
            name = self.name = "%s-%d" % (name, Weftd._counter)
        self.config_path = os.path.join(self.tmpdir, "%s.conf" % name)
        self.log_path = os.path.join(self.tmpdir, "%s.stderr" % name)
        self.stdout_path = os.path.join(self.tmpdir, "%s.stdout" % name)
        with open(self.config_path, "w") as f:
            f.write(config_text)
        _INSTANCES.append(self)

    def start(self):
        argv = [weftd_path(), "-c", self.config_path] + self.args
        log("starting %s" % " ".join(argv))
        with open(self.log_path, "wb") as err, \
                open(self.stdout_path, "wb") as out:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=err,
                                         start_new_session=True,
                                         cwd=self.tmpdir)
        self.pid = self.proc.pid
        self.seen.add(self.pid)
        return self

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.kill_all()
        return False

    # -- observation ------------------------------------------------------

    def poll(self):
        return self.proc.poll()

    def running(self):
        return self.proc.poll() is None

    def workers(self):
        """{pid: comm} of live direct children named weftd-w<N>."""
        w = {pid: comm for pid, comm in children(self.pid).items()
             if WORKER_COMM_RE.match(comm)}
        self.seen.update(w)
        return w

    def all_children(self):
        c = children(self.pid)
        self.seen.update(c)
        return c

    def own_pids(self):
        """Live processes of this instance: supervisor, its children and any
        process whose command line names this instance's config path."""
        pids = set()
        if self.pid and pid_alive(self.pid):
            pids.add(self.pid)
            pids.update(children(self.pid))
        if self.config_path:
            pids.update(pids_with_arg(self.config_path))
        self.seen.update(pids)
        return pids

    def _check_alive(self):
        rc = self.proc.poll()
        if rc is not None:
            raise TestFailure("weftd exited early with code %s" % rc)

    def wait_workers(self, n, timeout=STARTUP_TIMEOUT):
        """Wait until exactly n worker children exist; returns {pid: comm}."""
        last = {}

        def pred():
            nonlocal last
            self._check_alive()
            last = self.workers()
            return last if len(last) == n else None
        try:
            return wait_for(pred, timeout, "%d weftd-w* workers" % n)
        except TestFailure:
            raise TestFailure("expected exactly %d workers of pid %d within "
                              "%.0f s; last seen %r (all children %r)"
                              % (n, self.pid, timeout, last,
                                 children(self.pid)))

    def wait_tcp(self, port, timeout=STARTUP_TIMEOUT):
        """Wait until 127.0.0.1:port echoes a small probe."""
        def pred():
            self._check_alive()
            try:
                echo_roundtrip(port, b"probe", timeout=2.0)
                return True
            except EchoError:
                return False
        wait_for(pred, timeout, "TCP echo on %s:%d" % (LOOPBACK, port))

    def wait_udp(self, port, timeout=STARTUP_TIMEOUT):
        def pred():
            self._check_alive()
            try:
                udp_roundtrip(port, b"probe", timeout=0.5, attempts=1)
                return True
            except EchoError:
                return False
        wait_for(pred, timeout, "UDP echo on %s:%d" % (LOOPBACK, port))

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, lines=60):
        return "\n".join(self.log_text().splitlines()[-lines:])

    def sanitizer_reports(self):
        text = self.log_text()
        return [l for l in text.splitlines()
                if any(p in l for p in SANITIZER_PATTERNS)]

    # -- stopping ---------------------------------------------------------

    def signal_and_wait(self, sig, limit, timeout=EXIT_TIMEOUT):
        """Send sig to the supervisor, then wait until the supervisor and
        every worker seen are gone.  Returns (exit_code, seconds); fails if
        they are not all gone within `timeout` (the caller asserts `limit`)."""
        pids = set(self.workers()) | {self.pid}
        pids |= self.own_pids()
        t0 = time.monotonic()
        os.kill(self.pid, sig)

        def gone():
            self.proc.poll()
            return not any(pid_alive(p) for p in pids if p != self.pid) \
                and self.proc.returncode is not None
        try:
            wait_for(gone, timeout, "all weftd processes to exit after %s"
                     % signal.Signals(sig).name, interval=0.002,
                     max_interval=0.01)
        except TestFailure:
            alive = sorted(p for p in pids if pid_alive(p))
            raise TestFailure("after %s, processes %r still alive after "
                              "%.0f s" % (signal.Signals(sig).name, alive,
                                          timeout))
        elapsed = time.monotonic() - t0
        log("%s: supervisor and %d workers gone in %.3f s, exit code %s"
            % (signal.Signals(sig).name, len(pids) - 1, elapsed,
               self.proc.returncode))
        check(elapsed <= limit, "processes took %.3f s to exit after %s "
              "(limit %.1f s)" % (elapsed, signal.Signals(sig).name, limit))
        return self.proc.returncode, elapsed

    def stop(self, sig=signal.SIGTERM, limit=2.0):
        return self.signal_and_wait(sig, limit)

    def kill_all(self):
        """SIGKILL the process group and every process of this instance;
        reap the supervisor.  Safe to call many times."""
        if self.proc is None:
            return
        own = set()
        try:
            own = self.own_pids()
        except Exception:
            pass
        # The supervisor's group: safe while the supervisor is unreaped (the
        # pgid cannot be reused) or while a process of ours is in it.
        pg = self.pid
        in_group = any((read_stat(p) or (0, 0, 0, 0))[3] == pg for p in own)
        if self.proc.returncode is None or in_group:
            try:
                os.killpg(pg, signal.SIGKILL)
            except OSError:
                pass
        for pid in sorted(self.seen | own):
            if pid == self.pid and self.proc.returncode is not None:
                continue            # reaped: the pid may belong to another
            if pid != self.pid and not self._is_ours(pid):
                continue
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            sys.stderr.write("weftd pid %d did not die after SIGKILL\n"
                             % self.pid)
        # Workers die asynchronously; wait (bounded) so their last output
        # is in the log before it is scanned.
        try:
            wait_for(lambda: not any(pid_alive(p) and self._is_ours(p)
                                     for p in self.seen), 5.0,
                     "weftd processes to die after SIGKILL")
        except TestFailure as e:
            sys.stderr.write("%s: %r\n" % (e, sorted(
                p for p in self.seen if pid_alive(p))))

    def _is_ours(self, pid):
        comm = read_comm(pid)
        if comm is None:
            return False
        if comm.startswith("weftd"):
            return True
        args = read_cmdline(pid) or []
        return bool(self.config_path) and any(
            self.config_path.encode() in a for a in args)


_HELPERS = []            # helper subprocesses (not weftd) to kill at the end


def spawn_helper(argv, **kw):
    """Start a helper process of the test itself; killed by cleanup_all()."""
    p = subprocess.Popen(argv, start_new_session=True, **kw)
    _HELPERS.append(p)
    return p


def cleanup_all():
    for p in list(_HELPERS):
        if p.poll() is None:
            try:
                p.kill()
                p.wait(10)
            except Exception:
                traceback.print_exc()
    for inst in list(_INSTANCES):
        try:
            inst.kill_all()
        except Exception:
            traceback.print_exc()


def sanitizer_failures():
    bad = []
    for inst in _INSTANCES:
        lines = inst.sanitizer_reports()
        if lines:
            bad.append((inst, lines))
    return bad


def print_logs(stream=sys.stderr, lines=60):
    for inst in _INSTANCES:
        if inst.log_path and os.path.exists(inst.log_path) and \
                os.path.getsize(inst.log_path) > 0:
            stream.write("---- tail of %s ----\n%s\n"
                         % (inst.log_path, inst.log_tail(lines)))


# --------------------------------------------------------------------------
# Running a test script

def _finish(status, reason=None):
    cleanup_all()
    for inst, lines in sanitizer_failures():
        sys.stderr.write("FAIL: sanitizer report in %s:\n  %s\n"
                         % (inst.log_path, "\n  ".join(lines[:20])))
        status = 1
    if status == 1:
        if reason:
            sys.stderr.write("FAIL: %s\n" % reason)
        print_logs()
        for d in _TMPDIRS:
            sys.stderr.write("logs kept in %s\n" % d)
    else:
        for d in _TMPDIRS:
            shutil.rmtree(d, ignore_errors=True)
    sys.stdout.flush()
    sys.stderr.flush()
    return status


def run(test, timeout=120):
    """Run test() with cleanup, sanitizer scan and an overall deadline."""
    _exiting = []

    def on_deadline(signum, frame):
        if _exiting:
            return
        _exiting.append(1)
        if signum == signal.SIGALRM:
            why = "overall deadline of %d s expired" % timeout
        else:
            why = "terminated by %s" % signal.Signals(signum).name
        sys.stderr.write("FAIL: %s, while at:\n" % why)
        traceback.print_stack(frame, file=sys.stderr)
        os._exit(_finish(1, why))

    def watchdog():
        # Backstop in case the main thread cannot run the SIGALRM handler.
        if not threading.Event().wait(timeout + 30):
            sys.stderr.write("FAIL: watchdog: main thread stuck\n")
            os._exit(_finish(1, "watchdog"))

    signal.signal(signal.SIGALRM, on_deadline)
    # Handled (not ignored) signals are reset to default in weftd on exec;
    # an ignored SIGINT (e.g. a job started with & by a shell) would be
    # inherited and break the SIGINT tests.
    signal.signal(signal.SIGTERM, on_deadline)
    signal.signal(signal.SIGHUP, on_deadline)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.alarm(timeout)
    threading.Thread(target=watchdog, daemon=True).start()

    status, reason = 0, None
    try:
        test()
    except Skip as e:
        log("SKIP: %s" % e)
        status = SKIP
    except (TestFailure, AssertionError, EchoError) as e:
        traceback.print_exc()
        status, reason = 1, str(e)
    except BaseException as e:          # noqa: anything else is a failure
        traceback.print_exc()
        status, reason = 1, "unexpected %s: %s" % (type(e).__name__, e)
    finally:
        signal.alarm(0)
        _exiting.append(1)
        status = _finish(status, reason)
    log({0: "PASS", SKIP: "SKIP"}.get(status, "FAIL"))
    sys.exit(status)


# --------------------------------------------------------------------------
# weftctl

def weftctl(sock, *args, timeout=IO_TIMEOUT + 10, prefix=()):
    """Run weftctl -s sock args...; returns (rc, stdout, stderr)."""
    argv = list(prefix) + [weftctl_path(), "-s", sock] + list(args)
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        raise TestFailure("%s did not exit within %.0f s"
                          % (" ".join(argv), timeout))
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    bad = [l for l in err.splitlines()
           if any(s in l for s in SANITIZER_PATTERNS)]
    check(not bad, "sanitizer report from weftctl %s:\n%s"
          % (" ".join(args), err))
    return p.returncode, out, err


def ctl_json(sock, command):
    """weftctl --json COMMAND: the parsed reply, which must say ok."""
    import json
    rc, out, err = weftctl(sock, "--json", command)
    check(rc == 0, "weftctl %s: exit %s, stdout %r, stderr %r"
          % (command, rc, out, err))
    reply = json.loads(out)
    check(reply.get("ok") is True, "%s: %r" % (command, reply))
    return reply


def srcdir():
    """The source tree: $WEFT_SRCDIR (set by make check), else two levels
    above this file."""
    return os.environ.get("WEFT_SRCDIR") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..")


def find_cc():
    """The C compiler as an argv list: $CC, else cc, gcc or clang."""
    import shlex
    import shutil
    env_cc = shlex.split(os.environ.get("CC", ""))
    if env_cc and shutil.which(env_cc[0]):
        return env_cc
    for name in ("cc", "gcc", "clang"):
        if shutil.which(name):
            return [name]
    raise Skip("no C compiler found (tried $CC, cc, gcc, clang)")


def build_module(tmp, src, name):
    """Build the weft module src (a path) into tmp/name.so against the
    source tree's public headers; returns the .so path."""
    so = os.path.join(tmp, name + ".so")
    argv = find_cc() + ["-shared", "-fPIC", "-Wall", "-Wextra", "-Werror",
                        "-I" + os.path.join(srcdir(), "include"), "-o", so,
                        src]
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=120)
    check(p.returncode == 0, "building %s: %s"
          % (name, p.stderr.decode("utf-8", "replace")))
    return so


def build_test_module(tmp, name):
    """build_module for tests/integration/NAME.c."""
    return build_module(tmp, os.path.join(srcdir(), "tests", "integration",
                                          name + ".c"), name)


def active_by_slot(sock):
    """{slot: connections_active} of the running workers."""
    return {w["slot"]: w["connections_active"]
            for w in ctl_json(sock, "workers")["workers"]
            if w["state"] == "running"}


def connect_on_slot(sock, make, what):
    """(make(), slot of the worker whose connections_active grew)."""
    before = active_by_slot(sock)
    c = make()

    def grown():
        now = active_by_slot(sock)
        up = [s for s in now if now[s] > before.get(s, 0)]
        return up if len(up) == 1 else None
    return c, wait_for(grown, 10.0, what)[0]


def stats_fields():
    """[(name, kind)] from STATS_FIELDS in shared/stats.h, the one place
    the stats fields are declared."""
    with open(os.path.join(srcdir(), "shared", "stats.h")) as f:
        text = f.read()
    start = text.index("#define STATS_FIELDS(X)")
    end = text.index("\n\n", start)
    fields = re.findall(r"X\((\w+),\s*(COUNTER|GAUGE)", text[start:end])
    check(len(fields) >= 5, "could not read STATS_FIELDS from stats.h")
    return fields
