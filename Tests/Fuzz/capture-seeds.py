#!/usr/bin/env python3
"""Captures what real NBD servers send, as seed corpus for the fuzzers.

Usage: capture-seeds.py handshake MODE SOCKET OUTPUT [EXPORT]
       capture-seeds.py replies FLAGS SOCKET OUTPUT [EXPORT]

handshake: the client sends exactly what Negotiator sends in HandshakeReplay mode MODE;
OUTPUT gets the mode byte, then every byte the server answered.

replies: negotiates (structured replies and base:allocation when FLAGS has bit 0 and
bit 1, as in ReplyReplay's first byte, which also gets the context id the server chose),
sends a fixed set of requests with cookies
1, 2, ... at once, and reads every reply; OUTPUT gets ReplyReplay's header, the requests
and the transmission bytes the server sent.

EXPORT is the export to ask for (default: the default export); the replay always asks
for the default one, which does not change what the server sends back.
"""
import socket
import struct
import sys

OPTION_MAGIC = 0x49484156454F5054
SIMPLE_REPLY = 0x67446698
REQUEST_MAGIC = 0x25609513
# ReplyReplay's command numbers and the protocol's.
REPLAY_COMMANDS = {"READ": (0, 0), "WRITE": (1, 1), "FLUSH": (2, 3), "TRIM": (3, 4),
                   "WRITE_ZEROES": (5, 6), "BLOCK_STATUS": (6, 7)}


class Recorder:
    """A Unix socket that keeps every byte it receives."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.received = bytearray()

    def read(self, count):
        data = bytearray()
        while len(data) < count:
            more = self.sock.recv(count - len(data))
            if not more:
                raise EOFError("server hung up")
            data += more
        self.received += data
        return bytes(data)

    def send(self, data):
        self.sock.sendall(data)


def option(conn, code, data=b""):
    """Sends one option and reads its replies up to an ACK or an error.

    Returns that last reply type and the payloads of the replies before it.
    """
    conn.send(struct.pack(">QII", OPTION_MAGIC, code, len(data)) + data)
    payloads = []
    while True:
        _, _, kind, length = struct.unpack(">QIII", conn.read(20))
        payload = conn.read(length)
        if kind == 1 or kind & 0x80000000:
            return kind, payloads
        payloads.append(payload)


def meta_query(name, queries):
    data = struct.pack(">I", len(name)) + name + struct.pack(">I", len(queries))
    for query in queries:
        data += struct.pack(">I", len(query)) + query
    return data


def handshake(conn, mode, name):
    """Sends what Negotiator sends in HandshakeReplay mode `mode`.

    Returns the id of the base:allocation context (None when not negotiated).
    """
    conn.read(16)
    (flags,) = struct.unpack(">H", conn.read(2))
    conn.send(struct.pack(">I", flags & 3))
    if not flags & 1:
        raise SystemExit("server is not fixed newstyle")
    if mode & 1:
        option(conn, 3)
        try:
            option(conn, 2)
        except (EOFError, ConnectionResetError):
            pass  # Some servers hang up instead of acknowledging NBD_OPT_ABORT.
        return None
    structured = not mode & 2 and option(conn, 8)[0] == 1
    context_id = None
    if structured and not mode & 8:
        _, contexts = option(conn, 10, meta_query(name, [b"base:allocation"]))
        context_id = struct.unpack(">I", contexts[0][:4])[0] if contexts else None
    if mode & 4 and structured:
        option(conn, 9, meta_query(name, []))
    option(conn, 7, struct.pack(">I", len(name)) + name + struct.pack(">HHH", 2, 3, 2))
    return context_id


def requests(block_status):
    """The requests of a replies seed: (name, offset, length)."""
    chosen = [("WRITE", 0, 512), ("FLUSH", 0, 0), ("READ", 0, 1024), ("READ", 65536, 2048),
              ("TRIM", 8192, 4096), ("WRITE_ZEROES", 16384, 4096), ("READ", 1 << 40, 4096)]
    if block_status:
        chosen.insert(4, ("BLOCK_STATUS", 0, 131072))
    return chosen


def transmission(conn, flags, name):
    structured = flags & 1 != 0
    context_id = handshake(conn, 0 if structured else 2, name)
    block_status = structured and flags & 2 != 0
    if block_status:
        flags |= context_id << 2
    sent = requests(block_status)
    for cookie, (name, offset, length) in enumerate(sent, start=1):
        header = struct.pack(">IHHQQI", REQUEST_MAGIC, 0, REPLAY_COMMANDS[name][1], cookie, offset, length)
        conn.send(header + (b"\x55" * length if name == "WRITE" else b""))
    start = len(conn.received)
    waiting = {cookie: request for cookie, request in enumerate(sent, start=1)}
    while waiting:
        (magic,) = struct.unpack(">I", conn.read(4))
        if magic == SIMPLE_REPLY:
            error, cookie = struct.unpack(">IQ", conn.read(12))
            name, _, length = waiting.pop(cookie)
            if name == "READ" and error == 0:
                conn.read(length)
        else:
            done, _, cookie, length = struct.unpack(">HHQI", conn.read(16))
            conn.read(length)
            if done & 1:
                waiting.pop(cookie)
    header = bytes([flags, 0, len(sent) - 1])
    for name, offset, length in sent:
        header += struct.pack(">BQI", REPLAY_COMMANDS[name][0], offset, length)
    return header + conn.received[start:]


def main():
    kind, number, path, output = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    name = sys.argv[5].encode() if len(sys.argv) > 5 else b""
    conn = Recorder(path)
    if kind == "handshake":
        handshake(conn, number, name)
        seed = bytes([number]) + conn.received
    else:
        seed = transmission(conn, number, name)
    with open(output, "wb") as out:
        out.write(seed)


if __name__ == "__main__":
    main()
