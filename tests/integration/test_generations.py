"""max_generations and the log file.

1. max_generations = 2, shutdown_timeout = 60: a connection held on a
   generation-1 worker survives one reload (2 generations alive) but not a
   second one (3 would be): generation 1 is stopped at once, the client
   sees its connection end, stats count generations_forced = 1 and the log
   says so. A connection on generation 2 survives that second reload.
2. log_file: every line goes to the file; after the file is renamed,
   `weftctl reopen` and SIGUSR1 each make weftd (supervisor and workers)
   write to a new file of that name.

Synchronisation: waits for workers, generations, log lines and EOF with
deadlines.
"""

import os
import signal
import socket

import weftlib as W


def config(port, log):
    return ("workers = 2;\n"
            "max_generations = 2;\n"
            "shutdown_timeout = 60;\n"
            'log_file = "%s";\n'
            "listeners = (\n"
            '  { name = "echo"; listen = "127.0.0.1:%d"; protocol = "echo"; }\n'
            ");\n" % (log, port))


def hold(port):
    s = socket.create_connection((W.LOOPBACK, port), timeout=W.IO_TIMEOUT)
    W.echo_exchange(s, b"held")
    return s


def reload_to(sock, gen):
    rc, out, err = W.weftctl(sock, "reload")
    W.check(rc == 0, "reload: exit %s: %s" % (rc, err))
    W.wait_for(lambda: W.ctl_json(sock, "workers")["generation"] == gen, 10,
               "generation %d" % gen)


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def main():
    port = W.free_port("tcp")
    tmp = W.make_tmpdir()
    log = os.path.join(tmp, "weft.log")
    with W.Weftd(config(port, log), tmpdir=tmp) as d:
        d.wait_workers(2)
        d.wait_tcp(port)
        sock = os.path.join(tmp, "weft.sock")
        W.wait_for(lambda: "worker 0 serving" in read(log), 10,
                   "worker lines in the log file")

        g1 = hold(port)
        reload_to(sock, 2)
        W.echo_exchange(g1, b"still here after one reload")
        g2 = hold(port)
        reload_to(sock, 3)
        g1.settimeout(W.IO_TIMEOUT)
        try:
            end = g1.recv(10)
        except ConnectionResetError:
            end = b""
        W.check(end == b"", "generation 1's connection got %r" % end)
        W.echo_exchange(g2, b"generation 2 still serves")
        st = W.ctl_json(sock, "stats")
        W.check(st["generations_forced"] == 1, "generations_forced %r"
                % st["generations_forced"])
        W.wait_for(lambda: "stopping generation 1 now" in read(log), 10,
                   "the forced generation in the log")
        W.log("ok   1: max_generations = 2 stopped generation 1; "
              "generation 2 kept serving")
        g1.close()
        g2.close()

        for how in ("reopen", "SIGUSR1"):
            os.rename(log, log + "." + how)
            if how == "reopen":
                rc, out, err = W.weftctl(sock, "reopen")
                W.check(rc == 0, "weftctl reopen: %s %s" % (rc, err))
            else:
                os.kill(d.pid, signal.SIGUSR1)
            W.wait_for(lambda: "log file reopened" in read(log), 10,
                       "the supervisor writing to the new log (%s)" % how)
            # Workers too: a reload makes the running ones log as they go.
            gen = W.ctl_json(sock, "workers")["generation"]
            reload_to(sock, gen + 1)
            W.wait_for(lambda: " w0] " in read(log) and " w1] " in read(log),
                       10, "worker lines in the new log (%s)" % how)
            W.log("ok   2: %s: a new %s gets supervisor and worker lines"
                  % (how, os.path.basename(log)))
        # weftd's stderr is the log file here: scan it as weftlib scans
        # stderr files.
        for path in (log, log + ".reopen", log + ".SIGUSR1"):
            bad = [l for l in read(path).splitlines()
                   if any(p in l for p in W.SANITIZER_PATTERNS)]
            W.check(not bad, "sanitizer report in %s:\n%s"
                    % (path, "\n".join(bad)))


if __name__ == "__main__":
    W.run(main, timeout=120)
