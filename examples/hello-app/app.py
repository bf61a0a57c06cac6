#!/usr/bin/env python3
"""The example app the walkthrough deploys: answers every request with what it received
(method, path, headers) as JSON, so you can see what the gateway passes on and what it
keeps to itself (your session cookie, your bearer token).

It runs the same in a cluster (the manifest mounts this file into a python image) and on
your machine, where scripts/dev-node.sh runs it behind the development cluster stand-in:
    python3 examples/hello-app/app.py --port 8000 [--bind 127.0.0.1]
"""
import argparse
import json
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Hello(BaseHTTPRequestHandler):
    server_version = "hello-app/1"

    def answer(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        reply = json.dumps(
            {
                "app": "hello",
                "host": socket.gethostname(),
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body_bytes": len(body),
            }
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = answer

    def log_message(self, fmt, *args):  # one line per request on stderr, no reverse DNS
        print(f"hello-app: {self.command} {self.path} -> {args[1] if len(args) > 1 else ''}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--bind", default="0.0.0.0")
    args = parser.parse_args()
    server = ThreadingHTTPServer((args.bind, args.port), Hello)
    print(f"hello-app: listening on {args.bind}:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
