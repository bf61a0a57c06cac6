#!/usr/bin/env python3
"""Sends GET / requests one after another on one keep-alive connection, for
host/benches/instructions.sh: `warmup` requests, then runs `before` (a shell command; the
script zeroes callgrind's counters there), then `count` requests, then runs `after` (it dumps
them). Any answer but 2xx, or a closed connection, fails the run.

Usage: keepalive_client.py <port> <token or -> <warmup> <count> <before> <after>
"""
import socket
import subprocess
import sys


def main() -> None:
    port, token, warmup, count, before, after = sys.argv[1:7]
    head = f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    if token != "-":
        head += f"Authorization: Bearer {token}\r\n"
    request = (head + "\r\n").encode()
    conn = socket.create_connection(("127.0.0.1", int(port)))
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    pending = b""

    def exchange() -> None:
        nonlocal pending
        conn.sendall(request)
        while b"\r\n\r\n" not in pending:
            more = conn.recv(65536)
            if not more:
                sys.exit("the connection closed before a response head")
            pending += more
        end = pending.index(b"\r\n\r\n") + 4
        lines = pending[:end].decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        if not 200 <= status < 300:
            sys.exit(f"answered {lines[0]!r}")
        length = None
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        if length is None:
            sys.exit("a response without Content-Length (this client reads only those)")
        while len(pending) < end + length:
            more = conn.recv(65536)
            if not more:
                sys.exit("the connection closed in a response body")
            pending += more
        pending = pending[end + length :]

    for _ in range(int(warmup)):
        exchange()
    subprocess.run(before, shell=True, check=True, stdout=subprocess.DEVNULL)
    for _ in range(int(count)):
        exchange()
    subprocess.run(after, shell=True, check=True, stdout=subprocess.DEVNULL)
    conn.close()


if __name__ == "__main__":
    main()
