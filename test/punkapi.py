#!/usr/bin/env python3
"""The Punk API, served locally from the punkapi-db data set (the real API is gone).

    python3 test/punkapi.py --data node_modules/punkapi-db/data.json [--port 8383] [--host 127.0.0.1]
                            [--tls-cert FILE --tls-key FILE]

Routes, in the real API's format (a JSON array of beer objects; errors as
{"statusCode", "error", "message"}):
    GET /v2/beers/random            one random beer
    GET /v2/beers/{id}              that beer, or 404
    GET /v2/beers?page=P&per_page=N a page of beers by id (N from 1 to 80, default 25)

For tests it misbehaves on demand.  POST /_faults?mode=M&count=C queues C
faulty answers of kind M (default 1) for the next /v2 requests:
    500              HTTP 500 with a JSON error
    429              HTTP 429 with Retry-After: <retry_after> (default 2)
    hang             waits <seconds> (default 30) before answering
    truncated        a beer array cut in half, announced with its cut length
    huge             a body of <bytes> (default 2 MB), with Content-Length
    huge_chunked     the same without Content-Length (the client cannot know in advance)
    redirect_file    302 to file:///etc/passwd
    redirect_loop    302 to /_loop, which redirects to itself forever
    empty            []
    not_json         an HTML page with status 200
    wrong_shape      {"beers": ...}, a JSON object without an id
    bad_utf8         a beer whose name is not valid UTF-8
DELETE /_faults clears the queue; GET /_stats tells requests served and faults left.
"""
import argparse
import json
import random
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

FAULTS = {"500", "429", "hang", "truncated", "huge", "huge_chunked", "redirect_file",
          "redirect_loop", "empty", "not_json", "wrong_shape", "bad_utf8"}


class State:
    def __init__(self, beers):
        self.beers = sorted(beers, key=lambda b: b["id"])
        self.by_id = {b["id"]: b for b in self.beers}
        self.lock = threading.Lock()
        self.faults = []          # queue of (mode, params)
        self.requests = 0
        self.beers_served = 0
        self.random = random.Random(0)

    def next_fault(self):
        with self.lock:
            self.requests += 1
            return self.faults.pop(0) if self.faults else None


class Handler(BaseHTTPRequestHandler):
    server_version = "punkapi-local/1.0"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: tests read /_stats, not a log
        pass

    def send_json(self, status, obj, headers=None):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def send_raw(self, status, content_type, body):
        """A body exactly as given, announced with its length (which may be a lie's length)."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def error(self, status, error, message):
        self.send_json(status, {"statusCode": status, "error": error, "message": message})

    # --- control routes -------------------------------------------------------------
    def do_POST(self):
        url = urlparse(self.path)
        if url.path != "/_faults":
            return self.error(404, "Not Found", "No route " + url.path)
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        mode = q.pop("mode", "")
        if mode not in FAULTS:
            return self.error(400, "Bad Request", f"mode must be one of {sorted(FAULTS)}")
        count = int(q.pop("count", "1"))
        with self.server.state.lock:
            self.server.state.faults.extend([(mode, q)] * count)
        self.send_json(200, {"queued": count, "mode": mode})

    def do_DELETE(self):
        if urlparse(self.path).path != "/_faults":
            return self.error(404, "Not Found", "No route")
        with self.server.state.lock:
            self.server.state.faults.clear()
        self.send_json(200, {"cleared": True})

    # --- the API ----------------------------------------------------------------------
    def do_GET(self):
        state = self.server.state
        url = urlparse(self.path)
        if url.path == "/_loop":
            self.send_response(302)
            self.send_header("Location", "/_loop")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        if url.path == "/_stats":
            with state.lock:
                return self.send_json(200, {"requests": state.requests, "beers_served": state.beers_served,
                                            "faults_left": [m for m, _ in state.faults]})
        if not url.path.startswith("/v2/beers"):
            return self.error(404, "Not Found", "No endpoint found that matches '%s'" % url.path)
        fault = state.next_fault()
        if fault is not None:
            return self.misbehave(*fault)
        parts = url.path.rstrip("/").split("/")
        if url.path.rstrip("/") == "/v2/beers/random":
            with state.lock:
                beer = state.random.choice(state.beers)
            return self.serve([beer])
        if len(parts) == 4 and parts[3]:
            if not parts[3].isdigit() or int(parts[3]) < 1:
                return self.error(400, "Bad Request", "Invalid ID provided")
            beer = state.by_id.get(int(parts[3]))
            if beer is None:
                return self.error(404, "Not Found", "No beer found that matches the ID %s" % parts[3])
            return self.serve([beer])
        if len(parts) == 3:
            q = {k: v[-1] for k, v in parse_qs(url.query).items()}
            try:
                page, per_page = int(q.get("page", "1")), int(q.get("per_page", "25"))
            except ValueError:
                return self.error(400, "Bad Request", "Invalid query params")
            if page < 1 or not 1 <= per_page <= 80:
                return self.error(400, "Bad Request", "Invalid query params")
            return self.serve(state.beers[(page - 1) * per_page: page * per_page])
        return self.error(404, "Not Found", "No endpoint found that matches '%s'" % url.path)

    def serve(self, beers):
        with self.server.state.lock:
            self.server.state.beers_served += len(beers)
        self.send_json(200, beers)

    def misbehave(self, mode, q):
        state = self.server.state
        if mode == "500":
            return self.error(500, "Internal Server Error", "An internal server error occurred")
        if mode == "429":
            return self.send_json(429, {"statusCode": 429, "error": "Too Many Requests",
                                        "message": "Rate limit exceeded"},
                                  {"Retry-After": q.get("retry_after", "2")})
        if mode == "hang":
            time.sleep(float(q.get("seconds", "30")))
            return self.serve([state.beers[0]])
        if mode == "truncated":
            body = json.dumps([state.beers[1]]).encode()
            return self.send_raw(200, "application/json; charset=utf-8", body[: len(body) // 2])
        if mode in ("huge", "huge_chunked"):
            size = int(q.get("bytes", str(2 * 1024 * 1024)))
            beer = dict(state.beers[2], description="x" * size)
            body = json.dumps([beer]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            if mode == "huge":
                self.send_header("Content-Length", str(len(body)))
            else:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass
            return None
        if mode in ("redirect_file", "redirect_loop"):
            self.send_response(302)
            self.send_header("Location", "file:///etc/passwd" if mode == "redirect_file" else "/_loop")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        if mode == "empty":
            return self.send_json(200, [])
        if mode == "not_json":
            return self.send_raw(200, "text/html", b"<html><body>Service temporarily unavailable</body></html>")
        if mode == "wrong_shape":
            return self.send_json(200, {"beers": [state.beers[3]]})
        if mode == "bad_utf8":
            return self.send_raw(200, "application/json; charset=utf-8", b'[{"id": 5, "name": "Bad \xff\xfe bytes"}]')
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8383)
    ap.add_argument("--data", required=True, help="punkapi-db's data.json")
    ap.add_argument("--tls-cert", help="serve https with this certificate (PEM)")
    ap.add_argument("--tls-key", help="and this key (PEM)")
    args = ap.parse_args()
    with open(args.data) as f:
        beers = json.load(f)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.state = State(beers)
    scheme = "http"
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    print(f"punkapi: {len(beers)} beers on {scheme}://{args.host}:{args.port}/v2/beers", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
