#!/usr/bin/env python3
"""A loopback IMDSv2 stand-in for the bootstrap tests.

PUT /latest/api/token needs X-aws-ec2-metadata-token-ttl-seconds; every GET needs a token
it issued (else 401), like the real IMDS with HttpTokens=required. Serves instance-id, and
spot/instance-action from --spot-notice-file once that file exists (404 before), so a test
raises a spot notice on demand by writing the file. Writes its port to --port-file when ready.
"""
import argparse
import os
import secrets
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ap = argparse.ArgumentParser()
ap.add_argument("--instance-id", required=True)
ap.add_argument("--port-file", required=True)
ap.add_argument("--spot-notice-file", required=True)
ap.add_argument("--log", required=True)
args = ap.parse_args()

tokens = set()
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, fmt, *a):
        with lock, open(args.log, "a") as f:
            f.write("%s %s\n" % (self.command, self.path))

    def reply(self, code, body=b""):
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_PUT(self):
        if self.path != "/latest/api/token":
            return self.reply(404)
        ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
        if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
            return self.reply(400)
        tok = secrets.token_urlsafe(24)
        with lock:
            tokens.add(tok)
        self.reply(200, tok.encode())

    def do_GET(self):
        with lock:
            ok = self.headers.get("X-aws-ec2-metadata-token") in tokens
        if not ok:
            return self.reply(401)
        if self.path == "/latest/meta-data/instance-id":
            return self.reply(200, args.instance_id.encode())
        if self.path == "/latest/meta-data/spot/instance-action":
            try:
                with open(args.spot_notice_file, "rb") as f:
                    return self.reply(200, f.read())
            except FileNotFoundError:
                return self.reply(404)
        self.reply(404)


srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(args.port_file + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(args.port_file + ".tmp", args.port_file)
sys.stdout.flush()
srv.serve_forever()
