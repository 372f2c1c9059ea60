"""SIGTERM to the whole process group at once (systemd's default
KillMode=control-group, `pkill weftd`, a terminal's hangup).

The workers stop first and the supervisor, seeing them exit, may replace
them before it handles its own SIGTERM; it then stops the replacements,
which get SIGTERM right after fork. Before the fix, a replacement could
get that signal while it still had the supervisor's handler, lose it, and
serve on, with the supervisor waiting for it until shutdown_timeout
forced it out. Reproduced by hand in 4 runs out of 6.

Each of 8 rounds starts weftd (2 workers, an echo listener), waits for
both workers, sends SIGTERM to its process group (killpg), and waits until every process is gone, with a deadline of 20 s, far
below the shutdown_timeout of 60 s that would end a lost worker;
weftd must exit 0.
"""

import os
import signal

import weftlib as W

ROUNDS = 8


def one_round(i, port):
    conf = ("workers = 2;\n"
            "shutdown_timeout = 60;\n"
            "listeners = (\n"
            '  { name = "echo"; listen = "127.0.0.1:%d"; protocol = "echo"; }\n'
            ");\n" % port)
    with W.Weftd(conf) as d:
        d.wait_workers(2)
        W.wait_for(lambda: W.tcp_answers(port), 20, "the echo port")
        # weftd leads its own process group (weftlib starts it so): one
        # killpg reaches the supervisor and both workers at once.
        W.check(os.getpgid(d.pid) == d.pid, "weftd is not a group leader")
        os.killpg(d.pid, signal.SIGTERM)

        def gone():
            d.proc.poll()
            return d.proc.returncode is not None and not any(
                W.pid_alive(p) for p in d.own_pids() if p != d.pid)
        try:
            W.wait_for(gone, 20, "every weftd process to exit")
        except W.TestFailure:
            raise W.TestFailure("round %d: still alive after SIGTERM to the "
                                "group: %r\n%s" % (i, sorted(
                                    p for p in d.own_pids()
                                    if W.pid_alive(p)), d.log_tail()))
        W.check(d.proc.returncode == 0, "round %d: exit code %r"
                % (i, d.proc.returncode))


def main():
    port = W.free_port("tcp")
    for i in range(ROUNDS):
        one_round(i, port)
    W.log("ok   %d rounds: SIGTERM to the whole group, every process gone, "
          "exit 0" % ROUNDS)


if __name__ == "__main__":
    W.run(main, timeout=200)
