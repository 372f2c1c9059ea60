"""weftd -t: good configs pass, broken ones fail with FILE:LINE: at the
right line.

Synchronisation: none needed; each `weftd -t` run is waited for with a
timeout (subprocess wait), no daemon is left running.
"""

import os
import re
import sys

sys.dont_write_bytecode = True    # no __pycache__ in the source tree
import weftlib as W  # noqa: E402


def numbered(lines):
    """Join config lines; the one starting with '!' is the bad line.
    Returns (text, bad_line_number or None)."""
    out, bad = [], None
    for i, line in enumerate(lines, 1):
        if line.startswith("!"):
            assert bad is None, "two bad lines in one case"
            bad = i
            line = line[1:]
        out.append(line)
    return "\n".join(out) + "\n", bad


def base(port, top=(), listeners=None):
    """A valid config; `top` lines go after the header, `listeners` replace
    the default listener lines."""
    if listeners is None:
        listeners = [
            '  { name = "echo"; listen = "127.0.0.1:%d"; protocol = "echo"; },'
            % port,
            '  { name = "echo-udp"; listen = "udp://127.0.0.1:%d"; '
            'protocol = "echo"; }' % port,
        ]
    return ([
        "# weft integration test config",
        "# padding so that no error is reported on line 1 by accident",
        "",
    ] + list(top) + ([] if any("cpu_affinity" in t for t in top) else [
        "cpu_affinity = true;",
    ]) + [
        "listeners = (",
    ] + list(listeners) + [
        ");",
        "# end",
    ])


def listener(name, listen, protocol="echo", extra="", last=False):
    return '  { name = "%s"; listen = "%s"; protocol = "%s";%s }%s' % (
        name, listen, protocol, extra, "" if last else ",")


def main():
    tmp = W.make_tmpdir()
    p = W.free_port("both")
    q = W.free_port("both")
    a = "127.0.0.1:%d" % p
    b = "127.0.0.1:%d" % q
    failures = []

    good = {
        "basic": base(p, top=["workers = 2;"]),
        "auto-workers": base(p, top=['workers = "auto";']),
        "optional-keys": base(p, top=["workers = 1;"], listeners=[
            '  { name = "echo"; listen = "%s"; protocol = "echo"; '
            'backlog = 128; max_connections = 1000; },' % a,
            '  { name = "echo2"; listen = "%s"; protocol = "echo"; '
            'backlog = 16; max_connections = 10; }' % b]),
        "tcp-and-udp-two-ports": base(p, top=["workers = 2;"], listeners=[
            listener("t1", a), listener("t2", b),
            listener("u1", "udp://" + a), listener("u2", "udp://" + b,
                                                   last=True)]),
    }

    bad = {
        # syntax errors
        "syntax-double-equals": base(p, top=["!workers = = 2;"]),
        "syntax-missing-equals": base(p, top=["workers = 2;"], listeners=[
            '!  { name = "echo"; listen "%s"; protocol = "echo"; }' % a]),
        # unknown keys
        "unknown-top-level-key": base(p, top=["workers = 2;",
                                              "!bogus_option = 1;"]),
        "unknown-listener-key": base(p, top=["workers = 2;"], listeners=[
            listener("echo", a),
            "!" + listener("echo2", b, extra=' colour = "red";', last=True)]),
        # wrong types
        "workers-float": base(p, top=["!workers = 2.5;"]),
        "workers-string": base(p, top=['!workers = "many";']),
        "cpu-affinity-string": base(p, top=["workers = 2;",
                                            '!cpu_affinity = "yes";']),
        "backlog-string": base(p, top=["workers = 2;"], listeners=[
            "!" + listener("echo", a, extra=' backlog = "big";', last=True)]),
        "max-connections-float": base(p, top=["workers = 2;"], listeners=[
            listener("echo", a),
            "!" + listener("echo2", b, extra=" max_connections = 1.5;",
                           last=True)]),
        "listen-integer": base(p, top=["workers = 2;"], listeners=[
            '!  { name = "echo"; listen = %d; protocol = "echo"; }' % p]),
        "name-integer": base(p, top=["workers = 2;"], listeners=[
            '!  { name = 5; listen = "%s"; protocol = "echo"; }' % a]),
        # duplicates: the second occurrence is the bad line
        "duplicate-name": base(p, top=["workers = 2;"], listeners=[
            listener("echo", a), "!" + listener("echo", b, last=True)]),
        "duplicate-address": base(p, top=["workers = 2;"], listeners=[
            listener("one", a), "!" + listener("two", a, last=True)]),
        "duplicate-udp-address": base(p, top=["workers = 2;"], listeners=[
            listener("one", "udp://" + a),
            "!" + listener("two", "udp://" + a, last=True)]),
        # protocol
        "unknown-protocol": base(p, top=["workers = 2;"], listeners=[
            listener("echo", a),
            "!" + listener("echo2", b, protocol="gopher", last=True)]),
        # addresses
        "address-without-port": base(p, top=["workers = 2;"], listeners=[
            "!" + listener("echo", "127.0.0.1", last=True)]),
        "address-bad-octet": base(p, top=["workers = 2;"], listeners=[
            "!" + listener("echo", "300.1.1.1:80", last=True)]),
        "address-unclosed-bracket": base(p, top=["workers = 2;"], listeners=[
            "!" + listener("echo", "[::1:80", last=True)]),
        "address-port-too-big": base(p, top=["workers = 2;"], listeners=[
            "!" + listener("echo", "127.0.0.1:70000", last=True)]),
        "address-port-not-number": base(p, top=["workers = 2;"], listeners=[
            "!" + listener("echo", "127.0.0.1:http", last=True)]),
    }

    for name, lines in good.items():
        text, badline = numbered(lines)
        assert badline is None
        path = os.path.join(tmp, "good-%s.conf" % name)
        with open(path, "w") as f:
            f.write(text)
        rc, out, err = W.run_weftd(["-t", "-c", path], tmp, name="good-" + name)
        if rc != 0 or "configuration OK" not in out:
            failures.append("good config %s: exit %s, stdout %r, stderr %r\n"
                            "config:\n%s" % (name, rc, out, err, text))
        else:
            W.log("ok   good %-28s -> exit 0, configuration OK" % name)

    for name, lines in bad.items():
        text, badline = numbered(lines)
        assert badline is not None, name
        path = os.path.join(tmp, "bad-%s.conf" % name)
        with open(path, "w") as f:
            f.write(text)
        rc, out, err = W.run_weftd(["-t", "-c", path], tmp, name="bad-" + name)
        want = re.compile(r"^%s:%d: \S" % (re.escape(path), badline), re.M)
        problems = []
        if rc != 1:
            problems.append("exit code %s, expected 1" % rc)
        if "configuration OK" in out:
            problems.append("stdout says configuration OK")
        if not want.search(err):
            problems.append("stderr has no line starting with '%s:%d: '"
                            % (path, badline))
        if problems:
            failures.append("bad config %s (error on line %d): %s\n"
                            "stderr: %r\nconfig:\n%s"
                            % (name, badline, "; ".join(problems), err,
                               "".join("%3d  %s\n" % (i, l) for i, l in
                                       enumerate(text.splitlines(), 1))))
        else:
            W.log("ok   bad  %-28s -> exit 1, %s" % (
                name, err.strip().splitlines()[0] if err.strip() else ""))

    # A config file that does not exist.
    missing = os.path.join(tmp, "does-not-exist.conf")
    rc, out, err = W.run_weftd(["-t", "-c", missing], tmp, name="missing")
    if rc != 1 or missing not in err:
        failures.append("missing config: exit %s (expected 1), stderr %r "
                        "(expected to name %s)" % (rc, err, missing))
    else:
        W.log("ok   missing config file -> exit 1")

    # -V prints a version and exits 0.
    rc, out, err = W.run_weftd(["-V"], tmp, name="version")
    if rc != 0 or not (out.strip() or err.strip()):
        failures.append("-V: exit %s, stdout %r, stderr %r" % (rc, out, err))
    else:
        W.log("ok   -V -> %s" % (out.strip() or err.strip()).splitlines()[0])

    if failures:
        raise W.TestFailure("%d config check(s) failed:\n\n%s"
                            % (len(failures), "\n\n".join(failures)))


if __name__ == "__main__":
    W.run(main, timeout=240)
