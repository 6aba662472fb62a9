#!/usr/bin/env python3
"""A loopback IMDSv2 stand-in for the bootstrap tests.

PUT /latest/api/token needs X-aws-ec2-metadata-token-ttl-seconds; every GET needs a token
it issued (else 401), like the real IMDS with HttpTokens=required. Serves instance-id,
instance-type, placement/availability-zone, and
spot/instance-action from --spot-notice-file once that file exists (404 before), so a test
raises a spot notice on demand by writing the file. Writes its port to --port-file when ready.
"""
import argparse
import os
import re
import secrets
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ap = argparse.ArgumentParser()
ap.add_argument("--instance-id", required=True)
ap.add_argument("--port-file", required=True)
ap.add_argument("--spot-notice-file", required=True)
ap.add_argument("--log", required=True)
ap.add_argument("--instance-type", default="c7i.large")
ap.add_argument("--availability-zone", default="us-east-1a")
# EC2 stand-in on the same port (POST /, Query API CreateTags): the bootstrap's AWS_ENDPOINT_URL.
# Appends "<id> Key=K,Value=V" to <state>/tags.log; <state>/fail/ec2-create-tags (an error code)
# makes it fail; <state>/slow/ec2-create-tags ("<seconds> [calls] [value]") makes calls slow, and a slow
# call whose caller gave up meanwhile does not take effect (as if it was never sent).
ap.add_argument("--state", default="")
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
        if self.path == "/latest/meta-data/instance-type":
            return self.reply(200, args.instance_type.encode())
        if self.path == "/latest/meta-data/placement/availability-zone":
            return self.reply(200, args.availability_zone.encode())
        if self.path == "/latest/meta-data/spot/instance-action":
            try:
                with open(args.spot_notice_file, "rb") as f:
                    return self.reply(200, f.read())
            except FileNotFoundError:
                return self.reply(404)
        self.reply(404)


    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0)).decode()
        form = dict(urllib.parse.parse_qsl(body))
        auth = self.headers.get("Authorization", "")
        if not re.match(r"AWS4-HMAC-SHA256 Credential=[^/]+/\d{8}/[a-z0-9-]+/ec2/aws4_request, SignedHeaders=[^,]+, Signature=[0-9a-f]{64}$", auth):
            return self.reply(401, b"<Response><Errors><Error><Code>AuthFailure</Code></Error></Errors></Response>")
        if form.get("Action") != "CreateTags" or not args.state:
            return self.reply(400, b"<Response><Errors><Error><Code>InvalidAction</Code></Error></Errors></Response>")
        slow = os.path.join(args.state, "slow", "ec2-create-tags")
        parts = open(slow).read().split() if os.path.exists(slow) else []
        # "<seconds> [calls] [value]": only calls writing that tag value count and are slow.
        if parts and (len(parts) < 3 or form.get("Tag.1.Value") == parts[2]):
            with lock:
                count_file = slow + ".count"
                n = int(open(count_file).read()) + 1 if os.path.exists(count_file) else 1
                open(count_file, "w").write(str(n))
            if len(parts) < 2 or n <= int(parts[1]):
                time.sleep(float(parts[0]))
                # Like a CLI still starting up: a caller that gave up never got its call through.
                try:
                    if self.connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                        return
                except BlockingIOError:
                    pass
        fail = os.path.join(args.state, "fail", "ec2-create-tags")
        if os.path.exists(fail):
            code = open(fail).read().strip()
            return self.reply(400, ("<Response><Errors><Error><Code>%s</Code></Error></Errors></Response>" % code).encode())
        i = 1
        with lock, open(os.path.join(args.state, "tags.log"), "a") as f:
            while "Tag.%d.Key" % i in form:
                f.write("%s Key=%s,Value=%s\n" % (form.get("ResourceId.1", ""), form["Tag.%d.Key" % i], form.get("Tag.%d.Value" % i, "")))
                i += 1
        self.reply(200, b"<CreateTagsResponse><return>true</return></CreateTagsResponse>")


srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(args.port_file + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(args.port_file + ".tmp", args.port_file)
sys.stdout.flush()
srv.serve_forever()
