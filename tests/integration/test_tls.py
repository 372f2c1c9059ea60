"""TLS on listeners, with certificates made by the openssl command for
this run (a CA, a server certificate for 127.0.0.1, one for *.b.example,
and a second CA nobody trusts).

  * weftd -t refuses, at the tls group's FILE:LINE and with OpenSSL's
    reason: a missing file, a key that is not the certificate's, a bad
    min_version, unknown ciphers, tls on a UDP listener;
  * with 2 workers, echo over TLS (verified against the CA, 200 round
    trips on new connections, so both workers serve); ALPN; SNI picks the
    *.b.example certificate; close_notify is sent (a ragged EOF would
    raise SSLEOFError);
  * failures counted by kind: TLS 1.1 refused (tls_version_errors), a
    client that does not trust the CA (tls_unknown_ca), a client that
    never says hello (tls_handshake_timeouts, closed after
    handshake_timeout) while other clients are served;
  * session resumption on every worker, TLS 1.2 and 1.3: one session,
    20 new connections resuming it, tls_resumed grows on both workers;
  * a reload with new certificate files: new connections get the new
    certificate, a connection opened before keeps working; a session from
    before one reload still resumes (previous ticket key), after a second
    one it no longer does;
  * the client side, through the proxy protocol to the TLS echo listener:
    verified against the CA; refused for an untrusted CA and for a name
    the certificate does not carry (counted in connect_failures);
    accepted unverified with upstream_verify = false;
  * https with the http protocol: /hello, and a 1 MiB file byte for byte
    and a range of it (the file goes through the TLS staging buffer, or
    sendfile with kernel TLS where the kernel has it: tls_ktls).
"""

import hashlib
import os
import selectors
import shutil
import socket
import ssl
import subprocess
import sys
import time

sys.dont_write_bytecode = True    # no __pycache__ in the source tree
import weftlib as W  # noqa: E402

DEADLINE = 20.0


def openssl(*args, cwd):
    p = subprocess.run(["openssl"] + list(args), cwd=cwd,
                       capture_output=True, timeout=60)
    W.check(p.returncode == 0, "openssl %s: %s"
            % (" ".join(args), p.stderr.decode(errors="replace")))


def make_certs(d, serial_tag=""):
    """CA, server (127.0.0.1), b (*.b.example) and an untrusted CA."""
    if not shutil.which("openssl"):
        raise W.Skip("no openssl command")
    for ca in ("ca", "other"):
        if not os.path.exists(os.path.join(d, ca + ".pem")):
            openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-keyout", ca + ".key", "-out", ca + ".pem", "-subj",
                    "/CN=weft test %s" % ca, cwd=d)
    for name, cn, san in (("server", "localhost",
                           "DNS:localhost,IP:127.0.0.1"),
                          ("b", "x.b.example", "DNS:*.b.example")):
        openssl("req", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                name + ".key", "-out", name + ".csr", "-subj",
                "/CN=%s%s" % (cn, serial_tag), cwd=d)
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write("subjectAltName=%s\n" % san)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem",
                "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
                "-extfile", name + ".ext", "-out", name + ".pem", cwd=d)


def make_expired(d):
    """A certificate of the CA valid for one day in 2020 (openssl ca can
    set past dates where x509 cannot)."""
    e = os.path.join(d, "expired")
    os.mkdir(e)
    with open(os.path.join(e, "index.txt"), "w"):
        pass
    with open(os.path.join(e, "serial"), "w") as f:
        f.write("01\n")
    with open(os.path.join(e, "ca.cnf"), "w") as f:
        f.write("[ ca ]\ndefault_ca = t\n[ t ]\ndir = .\n"
                "database = ./index.txt\nserial = ./serial\n"
                "new_certs_dir = .\ndefault_md = sha256\npolicy = p\n"
                "[ p ]\ncommonName = supplied\n")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", "exp.key", "-out", "exp.csr", "-subj",
            "/CN=expired", cwd=e)
    openssl("ca", "-batch", "-config", "ca.cnf", "-cert", "../ca.pem",
            "-keyfile", "../ca.key", "-in", "exp.csr", "-out", "exp.pem",
            "-startdate", "20200101000000Z", "-enddate", "20200102000000Z",
            "-notext", cwd=e)


def client_ctx(d, version=None, trust="ca"):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(os.path.join(d, trust + ".pem"))
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    return ctx


def tls_connect(port, ctx, host="127.0.0.1", session=None, **kw):
    raw = socket.create_connection(("127.0.0.1", port), timeout=W.IO_TIMEOUT)
    return ctx.wrap_socket(raw, server_hostname=host, session=session, **kw)


def echo_once(s, data):
    s.sendall(data)
    got = b""
    while len(got) < len(data):
        chunk = s.recv(65536)
        W.check(chunk, "echo: closed after %d bytes" % len(got))
        got += chunk
    W.check(got == data, "echo: wrong bytes back")


def stats(d):
    st = W.ctl_json(os.path.join(d.tmpdir, "weft.sock"), "stats")
    return st


def listener_stat(d, name, field):
    for l in stats(d)["listeners"]:
        if l["name"] == name:
            return l[field]
    raise W.TestFailure("no listener %s" % name)


PROXIES = (("px-ok", 'upstream_ca = "%(d)s/ca.pem";'),
           ("px-untrusted", 'upstream_ca = "%(d)s/other.pem";'),
           ("px-wrong-name", 'upstream_ca = "%(d)s/ca.pem"; '
            'upstream_server_name = "wrong.example";'),
           ("px-no-verify", 'upstream_ca = "%(d)s/other.pem"; '
            'upstream_verify = false;'))


def proxies(d, echo, ports):
    return "".join(
        '  { name = "%s"; listen = "127.0.0.1:%d"; protocol = "proxy";\n'
        '    proxy = { upstreams = ( "127.0.0.1:%d" ); upstream_tls = true;'
        ' %s }; },\n' % (name, ports[i], echo, opts % {"d": d})
        for i, (name, opts) in enumerate(PROXIES))


def config(d, echo, web, px_ports, extra=""):
    return ("workers = 2;\ncpu_affinity = false;\n"
            "listeners = (\n" + proxies(d, echo, px_ports) +
            '  { name = "tls-echo"; listen = "127.0.0.1:%d"; protocol = "echo";'
            ' defer_accept = 0;'
            '\n    tls = { cert = "%s/server.pem"; key = "%s/server.key";'
            ' alpn = ("echo", "http/1.1"); handshake_timeout = 500;%s\n'
            '      sni = ( { names = ("*.b.example"); cert = "%s/b.pem";'
            ' key = "%s/b.key"; } ); }; },\n'
            '  { name = "tls-web"; listen = "127.0.0.1:%d"; protocol = "http";'
            '\n    tls = { cert = "%s/server.pem"; key = "%s/server.key";'
            ' alpn = ("http/1.1"); };\n'
            '    http = { root = "%s/www"; routes = ( { path = "/hello";'
            ' body = "Hello, TLS"; } ); }; }\n'
            ");\n" % (echo, d, d, extra, d, d, web, d, d, d))


def refusals(d):
    cases = {
        "missing file": ('cert = "%s/nope.pem"; key = "%s/server.key";',
                         "No such file or directory"),
        "wrong key": ('cert = "%s/server.pem"; key = "%s/b.key";',
                      "mismatch"),
        "bad version": ('cert = "%s/server.pem"; key = "%s/server.key"; '
                        'min_version = "SSLv3";', "min_version"),
        "bad ciphers": ('cert = "%s/server.pem"; key = "%s/server.key"; '
                        'ciphers = "NOPE";', "no cipher match"),
        "expired": ('cert = "%s/expired/exp.pem"; '
                    'key = "%s/expired/exp.key";', "expired on"),
    }
    for name, (tls, want) in cases.items():
        tls = tls.replace("%s", d)
        conf = ("workers = 1;\nlisteners = (\n"
                '  { name = "x"; listen = "127.0.0.1:1"; protocol = "echo";\n'
                "    tls = { %s }; }\n);\n" % tls)
        path = os.path.join(d, "bad.conf")
        with open(path, "w") as f:
            f.write(conf)
        p = subprocess.run([W.weftd_path(), "-t", "-c", path],
                           capture_output=True, timeout=30)
        err = p.stderr.decode(errors="replace")
        W.check(p.returncode != 0 and ("bad.conf:4:" in err) and want in err,
                "%s: exit %d, %r" % (name, p.returncode, err))
    conf = ("workers = 1;\nlisteners = (\n"
            '  { name = "x"; listen = "udp://127.0.0.1:1"; protocol = "echo";'
            '\n    tls = { cert = "%s/server.pem"; key = "%s/server.key"; };'
            " }\n);\n" % (d, d))
    path = os.path.join(d, "bad.conf")
    with open(path, "w") as f:
        f.write(conf)
    p = subprocess.run([W.weftd_path(), "-t", "-c", path],
                       capture_output=True, timeout=30)
    W.check(p.returncode != 0 and b"only on TCP" in p.stderr,
            "tls on UDP: %r" % p.stderr)
    W.log("ok   weftd -t refuses bad tls groups at FILE:LINE with the reason")


def basics(d, port):
    ctx = client_ctx(d.certs)
    ctx.set_alpn_protocols(["echo"])
    for i in range(200):
        with tls_connect(port, ctx) as s:
            echo_once(s, b"round %d\n" % i)
            if i == 0:
                W.check(s.selected_alpn_protocol() == "echo",
                        "ALPN: %r" % s.selected_alpn_protocol())
    per = [w["tls_handshakes"] for w in stats(d)["workers"]]
    W.check(len(per) == 2 and min(per) > 0, "handshakes per worker %r" % per)
    with tls_connect(port, client_ctx(d.certs), host="x.b.example") as s:
        cn = dict(x[0] for x in s.getpeercert()["subject"])["commonName"]
        W.check(cn.startswith("x.b.example"), "SNI gave %r" % cn)
        echo_once(s, b"sni\n")
    W.log("ok   echo over TLS on both workers %r, ALPN, SNI" % per)


def close_notify(d, web):
    s = tls_connect(web, client_ctx(d.certs), suppress_ragged_eofs=False)
    s.sendall(b"GET /hello HTTP/1.0\r\nHost: x\r\n\r\n")
    got = b""
    while True:
        chunk = s.recv(65536)   # SSLEOFError without close_notify
        if not chunk:
            break
        got += chunk
    W.check(got.startswith(b"HTTP/1.1 200") and got.endswith(b"Hello, TLS"),
            "https /hello: %r" % got[:200])
    s.close()
    W.log("ok   https answered and closed with close_notify")


def failures(d, port):
    before = {f: listener_stat(d, "tls-echo", f)
              for f in ("tls_version_errors", "tls_unknown_ca",
                        "tls_handshake_timeouts")}
    old = client_ctx(d.certs, ssl.TLSVersion.TLSv1_1)
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    try:
        tls_connect(port, old).close()
        raise W.TestFailure("a TLS 1.1 handshake succeeded")
    except ssl.SSLError:
        pass
    try:
        tls_connect(port, client_ctx(d.certs, trust="other")).close()
        raise W.TestFailure("a client that does not trust the CA connected")
    except ssl.SSLCertVerificationError:
        pass
    mute = socket.create_connection(("127.0.0.1", port), timeout=W.IO_TIMEOUT)
    t0 = time.monotonic()
    with tls_connect(port, client_ctx(d.certs)) as s:
        echo_once(s, b"served meanwhile\n")
    mute.settimeout(DEADLINE)
    W.check(mute.recv(1) == b"", "the silent client was not closed")
    waited = time.monotonic() - t0
    W.check(0.3 < waited < 10, "closed after %.2f s, handshake_timeout is "
            "0.5 s" % waited)
    mute.close()

    def counted():
        now = {f: listener_stat(d, "tls-echo", f) for f in before}
        return now if all(now[f] > before[f] for f in now) else None
    now = W.wait_for(counted, DEADLINE, "the failures to be counted")
    W.log("ok   failures counted by kind %r; the silent client was closed "
          "after %.2f s" % (now, waited))


def resumption(d, port):
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = client_ctx(d.certs, version)
        before = [w["tls_resumed"] for w in stats(d)["workers"]]
        with tls_connect(port, ctx) as s:
            echo_once(s, b"first\n")    # TLS 1.3: the ticket comes after
            sess = s.session
        reused = 0
        for i in range(20):
            with tls_connect(port, ctx, session=sess) as s:
                echo_once(s, b"again\n")
                reused += s.session_reused
        after = [w["tls_resumed"] for w in stats(d)["workers"]]
        W.check(reused == 20, "%s: %d of 20 resumed" % (version.name, reused))
        W.check(all(a > b for a, b in zip(after, before)),
                "%s: resumed per worker %r -> %r: not on both workers"
                % (version.name, before, after))
        W.log("ok   %s: 20 of 20 resumed, on both workers (%r)"
              % (version.name, [a - b for a, b in zip(after, before)]))


def cert_fingerprint(s):
    return hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()


def reload_rotation(d, port):
    sock = os.path.join(d.tmpdir, "weft.sock")
    ctx = client_ctx(d.certs, ssl.TLSVersion.TLSv1_2)
    with tls_connect(port, ctx) as s:
        echo_once(s, b"x\n")
        sess, fp_old = s.session, cert_fingerprint(s)
    kept = tls_connect(port, client_ctx(d.certs))
    echo_once(kept, b"before the reload\n")
    make_certs(d.certs, serial_tag=" renewed")
    rc, out, err = W.weftctl(sock, "reload")
    W.check(rc == 0, "reload: %s %s" % (out, err))
    with tls_connect(port, ctx, session=sess) as s:
        echo_once(s, b"y\n")
        W.check(s.session_reused, "a session from before one reload did not "
                "resume (previous ticket key)")
    fps = set()
    for i in range(10):
        with tls_connect(port, client_ctx(d.certs)) as s:
            fps.add(cert_fingerprint(s))
    W.check(fps and fp_old not in fps, "the old certificate after a reload")
    echo_once(kept, b"the old connection still works\n")
    kept.close()
    rc, out, err = W.weftctl(sock, "reload")
    W.check(rc == 0, "second reload: %s %s" % (out, err))
    with tls_connect(port, ctx, session=sess) as s:
        echo_once(s, b"z\n")
        W.check(not s.session_reused, "a ticket two rotations old resumed")
    W.log("ok   reload: new certificate served, old connection kept, "
          "tickets valid for one rotation")


def https_files(d, web):
    ctx = client_ctx(d.certs)
    blob = os.urandom(1 << 20)
    with open(os.path.join(d.certs, "www", "blob.bin"), "wb") as f:
        f.write(blob)

    def get(req):
        s = tls_connect(web, ctx)
        s.sendall(req)
        got = b""
        while True:
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            got += chunk
        s.close()
        head, _, body = got.partition(b"\r\n\r\n")
        return head, body
    head, body = get(b"GET /blob.bin HTTP/1.0\r\nHost: x\r\n\r\n")
    W.check(head.startswith(b"HTTP/1.1 200") and body == blob,
            "1 MiB over https: %r, %d bytes" % (head[:40], len(body)))
    head, body = get(b"GET /blob.bin HTTP/1.0\r\nHost: x\r\n"
                     b"Range: bytes=1000-200999\r\n\r\n")
    W.check(head.startswith(b"HTTP/1.1 206") and body == blob[1000:201000],
            "range over https: %r" % head[:40])
    ktls = listener_stat(d, "tls-web", "tls_ktls")
    W.log("ok   https: a 1 MiB file and a range of it, byte for byte "
          "(kernel TLS on %d connections)" % ktls)


def through_proxies(d, ports):
    """Plain clients, TLS from the proxy to the echo listener."""
    for (name, _), port in zip(PROXIES, ports):
        s = socket.create_connection(("127.0.0.1", port), timeout=W.IO_TIMEOUT)
        s.sendall(b"via %s\n" % name.encode())
        s.settimeout(DEADLINE)
        got = b""
        try:
            while not got.endswith(b"\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        except ConnectionResetError:
            pass
        s.close()
        ok = got == b"via %s\n" % name.encode()
        W.check(ok == (name in ("px-ok", "px-no-verify")),
                "%s: got %r" % (name, got))
    fails = W.wait_for(
        lambda: (lambda n: n if n >= 2 else None)(
            listener_stat(d, "outgoing", "connect_failures")),
        DEADLINE, "the refused upstreams to be counted")
    W.log("ok   proxy to a TLS upstream: verified, refused for an untrusted "
          "CA and a wrong name (%d connect failures), accepted unverified "
          "when told to" % fails)


def tools(d, echo, web):
    """openssl s_client and curl, TLS 1.2 and 1.3, against the CA."""
    ca = os.path.join(d.certs, "ca.pem")
    for v in ("-tls1_2", "-tls1_3"):
        p = subprocess.run(["openssl", "s_client", v, "-CAfile", ca,
                            "-verify_return_error", "-alpn", "http/1.1",
                            "-connect", "127.0.0.1:%d" % web],
                           input=b"", capture_output=True, timeout=30)
        out = p.stdout.decode(errors="replace")
        want = "TLSv1.2" if v == "-tls1_2" else "TLSv1.3"
        W.check("Verify return code: 0 (ok)" in out and
                ("Protocol  : %s" % want in out or
                 ", %s, " % want in out) and
                "ALPN protocol: http/1.1" in out,
                "s_client %s: %s" % (v, out[-600:]))
    if not shutil.which("curl"):
        W.log("skip curl: not installed")
        return
    for lo, hi in (("--tlsv1.2", "1.2"), ("--tlsv1.3", "1.3")):
        p = subprocess.run(["curl", "-s", "--cacert", ca, lo, "--tls-max", hi,
                            "-w", " %{http_version} %{ssl_verify_result}",
                            "https://localhost:%d/hello" % web],
                           capture_output=True, timeout=30)
        W.check(p.stdout == b"Hello, TLS 1.1 0",
                "curl %s: %r %r" % (lo, p.stdout, p.stderr))
    W.log("ok   openssl s_client and curl --cacert: TLS 1.2 and 1.3 "
          "verified, ALPN http/1.1")


def resume_40(d, web):
    """s_client -sess_out once, then 40 times -sess_in, each sending an
    HTTP/1.0 request, so that the server closes once it answered (and
    s_client has read the TLS 1.3 tickets by then)."""
    sess = os.path.join(d.certs, "s_client.sess")
    ca = os.path.join(d.certs, "ca.pem")
    sock = os.path.join(d.tmpdir, "weft.sock")

    def per_worker():
        return {w["pid"]: w["tls_resumed"]
                for w in W.ctl_json(sock, "workers")["workers"]}

    def s_client(*extra):
        # Input that lasts past the handshake: TLS 1.3 tickets come after.
        p = subprocess.run(["openssl", "s_client", "-tls1_3", "-CAfile", ca,
                            "-ign_eof", "-connect", "127.0.0.1:%d" % web]
                           + list(extra),
                           input=b"GET /hello HTTP/1.0\r\n\r\n",
                           capture_output=True, timeout=30)
        return p.stdout.decode(errors="replace")
    s_client("-sess_out", sess)
    before = per_worker()
    reused = sum("Reused, TLSv1.3" in s_client("-sess_in", sess)
                 for _ in range(40))
    after = per_worker()
    grew = [pid for pid in after if after[pid] > before.get(pid, 0)]
    W.check(reused >= 39, "%d of 40 s_client reconnections resumed" % reused)
    W.check(len(grew) == 2, "resumed on workers %r only (weftctl workers "
            "%r -> %r)" % (grew, before, after))
    W.log("ok   openssl s_client: %d of 40 resumed, on both workers" % reused)


def garbage(d, echo):
    before = listener_stat(d, "tls-echo", "tls_handshake_errors")
    g = socket.create_connection(("127.0.0.1", echo), timeout=W.IO_TIMEOUT)
    g.sendall(b"GET / HTTP/1.1\r\nHost: not-tls\r\n\r\n")
    with tls_connect(echo, client_ctx(d.certs)) as s:
        echo_once(s, b"served meanwhile\n")
    g.settimeout(DEADLINE)
    try:
        while g.recv(4096):
            pass        # an alert may come first, then the close
    except ConnectionResetError:
        pass
    g.close()
    W.wait_for(lambda: listener_stat(d, "tls-echo", "tls_handshake_errors")
               > before or None, DEADLINE, "garbage to be counted")
    W.log("ok   garbage instead of a ClientHello: closed and counted")


def echo_through(s, data, piece, what, slow=False):
    """Send data in pieces of piece bytes and read it back, from one
    thread (an OpenSSL connection must not be used by two at once);
    every byte checked. slow: read at most 4 KiB per round."""
    s.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
    sent, got = 0, bytearray()
    end = time.monotonic() + DEADLINE
    while len(got) < len(data):
        W.check(time.monotonic() < end, "%s stalled: sent %d, got %d"
                % (what, sent, len(got)))
        sel.select(0.5)
        for _ in range(8):
            if sent == len(data):
                break
            try:
                sent += s.send(data[sent:sent + piece])
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError,
                    BlockingIOError):
                break
        if sent == len(data):
            sel.modify(s, selectors.EVENT_READ)
        while True:
            try:
                chunk = s.recv(4096 if slow else 1 << 20)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError,
                    BlockingIOError):
                break
            W.check(chunk, "%s: closed after %d bytes back" % (what, len(got)))
            got += chunk
            if slow:
                break
    sel.close()
    s.close()
    W.check(bytes(got) == data, "%s: wrong bytes back" % what)


def echo_16m(d, echo):
    echo_through(tls_connect(echo, client_ctx(d.certs)),
                 os.urandom(16 << 20), 1 << 16, "16 MiB echo over TLS")
    W.log("ok   16 MiB echoed over TLS, every byte checked")


def echo_small_records(d, echo):
    """4 MiB echoed as 600-byte records to a client with a 4 KiB receive
    buffer: the server's gathered writes keep meeting a full socket, and
    what it keeps back must still leave whole and in order."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(W.IO_TIMEOUT)
    raw.connect(("127.0.0.1", echo))
    s = client_ctx(d.certs).wrap_socket(raw, server_hostname="127.0.0.1")
    echo_through(s, os.urandom(4 << 20), 600, "small-record echo", slow=True)
    W.log("ok   4 MiB in 600-byte records to a 4 KiB receive buffer, in order")


def bad_reload(d, echo):
    sock = os.path.join(d.tmpdir, "weft.sock")
    good = d.config_text
    bad = good.replace("%s/server.key" % d.certs, "%s/b.key" % d.certs, 1)
    W.check(bad != good, "bad_reload: nothing replaced")
    with open(d.config_path, "w") as f:
        f.write(bad)
    rc, out, err = W.weftctl(sock, "reload")
    with open(d.config_path, "w") as f:
        f.write(good)
    W.check(rc != 0 and "mismatch" in out + err and ".conf:" in out + err,
            "a reload with a wrong key: %r %r" % (out, err))
    with tls_connect(echo, client_ctx(d.certs)) as s:
        echo_once(s, b"still serving\n")
    W.log("ok   a reload with a key that is not the certificate's is refused "
          "at FILE:LINE; the old generation serves")


def ticket_timer(certs):
    """tls_ticket_rotate = 1: a session stops resuming once two rotations
    passed (waited for, with a deadline)."""
    port = W.free_port("tcp")
    conf = ("workers = 1;\ntls_ticket_rotate = 1;\nlisteners = (\n"
            '  { name = "t"; listen = "127.0.0.1:%d"; protocol = "echo";\n'
            '    tls = { cert = "%s/server.pem"; key = "%s/server.key"; }; }\n'
            ");\n" % (port, certs, certs))
    with W.Weftd(conf) as d:
        W.wait_for(lambda: W.tcp_answers(port) or None, DEADLINE, "port")
        ctx = client_ctx(certs, ssl.TLSVersion.TLSv1_2)
        with tls_connect(port, ctx) as s:
            echo_once(s, b"x\n")
            sess = s.session
        t0 = time.monotonic()

        def expired():
            with tls_connect(port, ctx, session=sess) as s:
                echo_once(s, b"y\n")
                return None if s.session_reused else True
        W.wait_for(expired, DEADLINE, "the ticket key to rotate out",
                   interval=0.2, max_interval=0.2)
        W.log("ok   tls_ticket_rotate = 1: a ticket stopped resuming after "
              "%.1f s" % (time.monotonic() - t0))


def main():
    certs = W.make_tmpdir()
    make_certs(certs)
    make_expired(certs)
    os.mkdir(os.path.join(certs, "www"))
    refusals(certs)
    echo, web = W.free_port("tcp"), W.free_port("tcp")
    px = [W.free_port("tcp") for _ in PROXIES]
    with W.Weftd(config(certs, echo, web, px)) as d:
        d.certs = certs
        d.wait_workers(2)
        W.wait_for(lambda: W.tcp_answers(echo) and W.tcp_answers(web)
                   or None, DEADLINE, "the TLS ports")
        basics(d, echo)
        close_notify(d, web)
        failures(d, echo)
        resumption(d, echo)
        https_files(d, web)
        through_proxies(d, px)
        tools(d, echo, web)
        resume_40(d, web)
        garbage(d, echo)
        echo_16m(d, echo)
        echo_small_records(d, echo)
        bad_reload(d, echo)
        reload_rotation(d, echo)
    ticket_timer(certs)


if __name__ == "__main__":
    W.run(main)
