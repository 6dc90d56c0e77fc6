"""An IRC client for the irc-dcc end-to-end test: python3-irc (Debian) speaks IRC through a
SOCKS5 gateway (the connection to the IRC server), DCC connections go straight to the address
in the offer, as IRC clients with a SOCKS proxy for the server do.

Usage: dcc_client.py GATEWAY_HOST GATEWAY_PORT IRC_NAME IRC_PORT NICK ROLE [ARGS...]

Roles:
  receive                      accept one DCC SEND (active or passive) or CHAT, report it
  receive-socks                the same, DCC SEND's connection through the SOCKS gateway too
  send PEER FILE               offer FILE to PEER with DCC SEND (we listen)
  passive-send PEER FILE       offer FILE to PEER with passive DCC SEND (port 0, token)
  chat PEER                    offer a DCC CHAT to PEER, exchange one line each way
  attack PEER OFFER...         send each OFFER (`SEND name address port size`) to PEER as it
                               is, then the CHAT of `chat` (which marks the end)

Prints one JSON object per event on stdout ("ready" after the welcome, "done" at the end).
Every wait is bounded.
"""

import hashlib
import ipaddress
import json
import os
import socket
import struct
import sys
import threading
import time

import irc.client

TIMEOUT = 30


def say(**fields):
    print(json.dumps(fields), flush=True)


def socks_factory(gateway_host, gateway_port):
    def connect(server_address):
        name, port = server_address
        sock = socket.create_connection((gateway_host, gateway_port), timeout=TIMEOUT)
        sock.sendall(b"\x05\x01\x00")
        if sock.recv(2) != b"\x05\x00":
            raise OSError("SOCKS method refused")
        try:
            literal = ipaddress.ip_address(name)
            kind = b"\x01" if literal.version == 4 else b"\x04"
            destination = kind + literal.packed
        except ValueError:
            raw = name.encode()
            destination = b"\x03" + bytes([len(raw)]) + raw
        sock.sendall(b"\x05\x01\x00" + destination + struct.pack(">H", port))
        head = recv_exact(sock, 4)
        if head[1] != 0:
            raise OSError("SOCKS CONNECT failed: REP %d" % head[1])
        recv_exact(sock, {1: 4, 4: 16}[head[3]] + 2)
        sock.settimeout(None)
        return sock

    return connect


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise OSError("connection closed")
        data += chunk
    return data


def dcc_address(text):
    """The offer's address: a 32-bit integer (IPv4) or IPv6 text."""
    if text.isdigit():
        return str(ipaddress.IPv4Address(int(text)))
    return str(ipaddress.ip_address(text))


def offer_address(local):
    address = ipaddress.ip_address(local)
    return str(int(address)) if address.version == 4 else str(address)


def listen_on(local):
    family = socket.AF_INET6 if ":" in local else socket.AF_INET
    server = socket.socket(family, socket.SOCK_STREAM)
    server.bind((local, 0))
    server.listen(1)
    server.settimeout(TIMEOUT)
    return server


def send_file(conn, path):
    """DCC SEND's sender: the file, then wait for the receiver's last acknowledgement."""
    size = os.path.getsize(path)
    conn.settimeout(TIMEOUT)
    with open(path, "rb") as f:
        while True:
            chunk = f.read(65536)
            if not chunk:
                break
            conn.sendall(chunk)
    acked = 0
    while acked < size:
        acked = struct.unpack(">I", recv_exact(conn, 4))[0]
    conn.close()
    return size


def receive_file(conn, size):
    """DCC SEND's receiver: read `size` bytes, acknowledging the running total."""
    conn.settimeout(TIMEOUT)
    digest = hashlib.sha256()
    received = 0
    while received < size:
        chunk = conn.recv(min(65536, size - received))
        if not chunk:
            break
        digest.update(chunk)
        received += len(chunk)
        conn.sendall(struct.pack(">I", received & 0xFFFFFFFF))
    conn.close()
    return received, digest.hexdigest()


def chat(conn, nick):
    conn.settimeout(TIMEOUT)
    conn.sendall(("hello from %s\n" % nick).encode())
    line = b""
    while not line.endswith(b"\n"):
        chunk = conn.recv(1)
        if not chunk:
            break
        line += chunk
    conn.close()
    return line.decode().strip()


def main():
    gateway_host, gateway_port, irc_name, irc_port, nick, role = sys.argv[1:7]
    args = sys.argv[7:]
    reactor = irc.client.IRC()
    server = reactor.server()
    server.connect(
        irc_name,
        int(irc_port),
        nick,
        connect_factory=socks_factory(gateway_host, int(gateway_port)),
    )
    local = server.socket.getsockname()[0]
    state = {"done": False, "worker": None}

    def finish(**fields):
        say(event="done", **fields)
        state["done"] = True

    def run(task):
        def wrapped():
            try:
                task()
            except Exception as error:  # reported, never silent
                finish(error=repr(error))

        state["worker"] = threading.Thread(target=wrapped, daemon=True)
        state["worker"].start()

    def on_welcome(connection, event):
        say(event="ready", local=local)
        if os.environ.get("WAIT_FOR_PEER") and role == "send":
            # The peer is another program: offer once the server knows its nick (ISON).
            def ask():
                if not state.get("offered"):
                    connection.ison([args[0]])
                    reactor.execute_delayed(0.5, ask)

            ask()
        else:
            offer(connection)

    def on_ison(connection, event):
        if not state.get("offered") and args[0] in " ".join(event.arguments).split():
            offer(connection)

    def offer(connection):
        state["offered"] = True
        if role == "send" or role == "passive-send":
            peer, path = args
            name = os.path.basename(path)
            size = os.path.getsize(path)
            if role == "send":
                listener = listen_on(local)
                port = listener.getsockname()[1]
                connection.ctcp("DCC", peer, "SEND %s %s %d %d" % (name, offer_address(local), port, size))

                def serve():
                    conn, _ = listener.accept()
                    listener.close()
                    finish(sent=send_file(conn, path))

                run(serve)
            else:
                state["passive"] = (path, "4242")
                connection.ctcp("DCC", peer, "SEND %s %s 0 %d 4242" % (name, offer_address(local), size))
        elif role == "chat" or role == "attack":
            peer = args[0]
            for raw in args[1:]:
                connection.ctcp("DCC", peer, raw)
            listener = listen_on(local)
            port = listener.getsockname()[1]
            connection.ctcp("DCC", peer, "CHAT chat %s %d" % (offer_address(local), port))

            def serve():
                conn, _ = listener.accept()
                listener.close()
                finish(chat=chat(conn, nick))

            run(serve)

    def on_ctcp(connection, event):
        if event.arguments[0] != "DCC" or len(event.arguments) < 2:
            return
        offer = event.arguments[1]
        words = offer.split()
        say(event="offer", offer=offer)
        if words[0] == "SEND" and role.startswith("receive"):
            name, address, port, size = words[1], words[2], int(words[3]), int(words[4])
            if port == 0:
                token = words[5]
                listener = listen_on(local)
                mine = listener.getsockname()[1]
                connection.ctcp(
                    "DCC", event.source.nick, "SEND %s %s %d %d %s" % (name, offer_address(local), mine, size, token)
                )

                def serve():
                    conn, _ = listener.accept()
                    listener.close()
                    received, digest = receive_file(conn, size)
                    finish(received=received, sha256=digest, offer=offer)

                run(serve)
            else:

                def fetch():
                    if role == "receive-socks":
                        conn = socks_factory(gateway_host, int(gateway_port))((dcc_address(address), port))
                    else:
                        conn = socket.create_connection((dcc_address(address), port), timeout=TIMEOUT)
                    received, digest = receive_file(conn, size)
                    finish(received=received, sha256=digest, offer=offer)

                run(fetch)
        elif words[0] == "SEND" and role == "passive-send" and len(words) == 6:
            path, token = state["passive"]
            if words[5] != token:
                return
            address, port = words[2], int(words[3])

            def push():
                conn = socket.create_connection((dcc_address(address), port), timeout=TIMEOUT)
                finish(sent=send_file(conn, path), answer=offer)

            run(push)
        elif words[0] == "CHAT" and role == "receive":
            address, port = words[2], int(words[3])

            def talk():
                conn = socket.create_connection((dcc_address(address), port), timeout=TIMEOUT)
                finish(chat=chat(conn, nick), offer=offer)

            run(talk)

    server.add_global_handler("welcome", on_welcome)
    server.add_global_handler("ison", on_ison)
    server.add_global_handler("ctcp", on_ctcp)
    deadline = time.monotonic() + 2 * TIMEOUT
    while not state["done"] and time.monotonic() < deadline:
        reactor.process_once(0.2)
    if not state["done"]:
        say(event="done", error="timed out")
    try:
        server.quit("bye")
        reactor.process_once(0.2)
    except Exception:
        pass


main()
