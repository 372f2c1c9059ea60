"""Every configuration key weftd accepts is documented in weft.conf(5).

The keys are read from the C sources with regexes:
  * the key tables of supervisor/config.c (top_keys, listener_keys,
    control_keys, bus_keys, admin_keys, log_keys) and supervisor/tls_conf.c
    (tls_keys, sni_keys);
  * every protocol's keys: the string literals passed as the key to
    weft_settings_* (weft_settings_error excepted) in protocols/*.c and
    protocols/*/*.c, and to the protocol's own wrappers, found as static
    functions with a `const char *key` parameter that pass it on to
    weft_settings_*.
Each key must appear in man/weft.conf.5 in bold (.B, .BR, .RB, .BI, .IB,
\\fB...\\fR) within its section (top-level groups: TOP-LEVEL SETTINGS;
listener keys: LISTENER SETTINGS; tls, sni: TLS; a protocol's keys: the
section named after it), or as GROUP.KEY anywhere.
Too few keys found fails the test: a regex that stopped matching must not
pass silently.

Synchronisation: none; no daemon is started.
"""

import glob
import os
import re
import sys

sys.dont_write_bytecode = True    # no __pycache__ in the source tree
import weftlib as W  # noqa: E402

SRC = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

# table name -> (group shown as GROUP.KEY or None, man section, fewest keys)
TABLES = {
    ("supervisor/config.c", "top_keys"): (None, "TOP-LEVEL SETTINGS", 12),
    ("supervisor/config.c", "listener_keys"): (None, "LISTENER SETTINGS", 10),
    ("supervisor/config.c", "control_keys"): ("control",
                                              "TOP-LEVEL SETTINGS", 3),
    ("supervisor/config.c", "bus_keys"): ("bus", "TOP-LEVEL SETTINGS", 1),
    ("supervisor/config.c", "admin_keys"): ("admin", "TOP-LEVEL SETTINGS", 1),
    ("supervisor/config.c", "log_keys"): ("log", "TOP-LEVEL SETTINGS", 3),
    ("supervisor/tls_conf.c", "tls_keys"): ("tls", "TLS", 8),
    ("supervisor/tls_conf.c", "sni_keys"): ("sni", "TLS", 3),
}
# protocol -> fewest keys its sources must yield
PROTOCOLS = {"proxy": 6, "http": 20, "chat": 6, "feed": 6}

TABLE_RE = r"static\s+const\s+char\s*\*\s*const\s+%s\s*\[\s*\]\s*=\s*\{(.*?)\}"
SETTINGS_CALL_RE = re.compile(
    r"\bweft_settings_(?!error\b)\w+\(\s*\w+\s*,\s*\"([A-Za-z_][\w]*)\"")
WRAPPER_RE = re.compile(
    r"static\s+[\w\s\*]+?\b(\w+)\s*\(\s*struct\s+weft_settings\s*\*\s*\w+\s*,"
    r"\s*const\s+char\s*\*\s*key\b(?:[^()]|\([^()]*\))*\)\s*\{(.*?)\n\}",
    re.S)


def strip_comments(text):
    return re.sub(r"/\*.*?\*/|//[^\n]*", " ", text, flags=re.S)


def source(rel):
    with open(os.path.join(SRC, rel)) as f:
        return strip_comments(f.read())


def table_keys(rel, name):
    m = re.search(TABLE_RE % re.escape(name), source(rel), re.S)
    W.check(m is not None, "no table %s[] in %s" % (name, rel))
    return re.findall(r"\"([^\"]+)\"", m.group(1))


def protocol_keys(proto):
    """Keys the protocol's configure code reads, from its sources."""
    files = glob.glob(os.path.join(SRC, "protocols", proto + ".c")) + \
        glob.glob(os.path.join(SRC, "protocols", proto, "*.c"))
    W.check(files, "no sources for protocol %s" % proto)
    keys = set()
    for path in files:
        text = strip_comments(open(path).read())
        keys.update(SETTINGS_CALL_RE.findall(text))
        for wrapper, body in WRAPPER_RE.findall(text):
            if re.search(r"\bweft_settings_\w+\(\s*\w+\s*,\s*key\b", body):
                keys.update(re.findall(
                    r"\b%s\(\s*\w+\s*,\s*\"([A-Za-z_]\w*)\"" % wrapper, text))
    return keys


def all_keys():
    """[(key, group or None, section)]; fails on suspiciously few."""
    out = []
    for (rel, name), (group, section, least) in TABLES.items():
        keys = table_keys(rel, name)
        W.check(len(keys) >= least, "%s[] in %s: %d keys, expected at least "
                "%d: is the regex still right?" % (name, rel, len(keys), least))
        out += [(k, group, section) for k in keys]
    for proto, least in PROTOCOLS.items():
        keys = protocol_keys(proto)
        W.check(len(keys) >= least, "protocol %s: %d keys (%s), expected at "
                "least %d: is the regex still right?"
                % (proto, len(keys), sorted(keys), least))
        out += [(k, proto, proto.upper()) for k in sorted(keys)]
    W.check(len(out) >= 80, "only %d keys in all" % len(out))
    return out


def macro_args(rest):
    """Arguments of a man macro line, quotes honoured."""
    return [a[1:-1] if a.startswith('"') else a
            for a in re.findall(r'"[^"]*"|\S+', rest)]


def bold_words(line):
    """The bold words of one man source line."""
    words = re.findall(r"\\fB(.*?)\\f[RIP]", line)
    m = re.match(r"^\.(B|BR|RB|BI|IB)\s+(.*)$", line)
    if m:
        args = macro_args(m.group(2))
        first = 0 if m.group(1) in ("B", "BR", "BI") else 1
        step = 1 if m.group(1) == "B" else 2
        # A page reference (.BR syslog (3)) names a page, not a key.
        words += [a for i, a in enumerate(args) if i >= first and
                  (i - first) % step == 0 and
                  not re.match(r"\(\d", (args[i + 1:] or [""])[0])]
    # ", " and the like between bold items: keep each word alone too.
    return {w.strip(" ,;.:()") for b in words for w in [b] + b.split()}


def man_index(path):
    """{section: set of bold words}, and the whole text."""
    with open(path) as f:
        text = f.read()
    sections, cur = {}, ""
    for line in text.splitlines():
        m = re.match(r"^\.SH\s+\"?([^\"]*)\"?\s*$", line)
        if m:
            cur = m.group(1).strip()
            continue
        sections.setdefault(cur, set()).update(bold_words(line))
    return sections, text


def missing_keys(man_path):
    sections, text = man_index(man_path)
    missing = []
    for key, group, section in all_keys():
        if group and re.search(r"\b%s\.%s\b" % (re.escape(group),
                                                  re.escape(key)), text):
            continue
        if key in sections.get(section, ()):
            continue
        missing.append("%s%s (section %s)"
                       % (group + "." if group else "", key, section))
    return missing


def main():
    man = os.path.join(SRC, "man", "weft.conf.5")
    keys = all_keys()
    W.log("%d keys found in the sources" % len(keys))
    missing = missing_keys(man)
    W.check(not missing, "keys missing from %s:\n  %s"
            % (man, "\n  ".join(missing)))
    W.log("ok   1: every key is in weft.conf(5)")


if __name__ == "__main__":
    W.run(main, timeout=60)
