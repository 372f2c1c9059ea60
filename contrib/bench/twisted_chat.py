"""The subset of weftd's chat protocol that chat-load speaks (HELLO,
NICK, JOIN, MSG to a room), on Twisted, for contrib/bench/chat.sh.

usage: python3 twisted_chat.py PORT
"""

import sys

from twisted.internet import epollreactor

epollreactor.install()

from twisted.internet import protocol, reactor  # noqa: E402
from twisted.protocols.basic import LineReceiver  # noqa: E402

ROOMS = {}


class Chat(LineReceiver):
    delimiter = b"\n"
    MAX_LENGTH = 512

    def connectionMade(self):
        # As weftd's listeners: no Nagle delay on small lines.
        self.transport.setTcpNoDelay(True)
        self.nick = None
        self.rooms = set()
        self.sendLine(b"HELLO twisted-chat")

    def lineReceived(self, line):
        cmd, _, rest = line.rstrip(b"\r").partition(b" ")
        cmd = cmd.upper()
        if cmd == b"NICK":
            self.nick = rest
            self.sendLine(b"OK NICK " + rest)
        elif cmd == b"JOIN":
            members = ROOMS.setdefault(rest, set())
            members.add(self)
            self.rooms.add(rest)
            self.sendLine(b"OK JOIN " + rest)
            for m in members:
                m.sendLine(b"JOIN " + rest + b" " + self.nick)
        elif cmd == b"MSG":
            room, _, text = rest.partition(b" ")
            if room not in self.rooms:
                self.sendLine(b"ERR NOTINROOM " + room)
                return
            self.sendLine(b"OK MSG")
            out = b"MSG " + room + b" " + self.nick + b" " + text
            for m in ROOMS[room]:
                m.sendLine(out)
        else:
            self.sendLine(b"ERR UNKNOWN " + cmd)

    def connectionLost(self, reason):
        for r in self.rooms:
            ROOMS[r].discard(self)


f = protocol.Factory()
f.protocol = Chat
reactor.listenTCP(int(sys.argv[1]), f, interface="127.0.0.1", backlog=1024)
reactor.run()
