"""Fake webhook receivers for the alert sink tests (STYLE.md: fake
upstreams live here). All listen on 127.0.0.1, port 0, in threads of the
test process.

WebhookReceiver records every POST and answers from a script (e.g. 500
then 200); StalledReceiver accepts TCP connections and never answers."""

import http.server
import json
import socket
import threading
import time


class WebhookReceiver:
    """script: statuses for the first requests, in order (an int, or
    (status, {header: value})); every later request gets 200. Each request
    is recorded as a dict: t (monotonic), path, headers, body (parsed JSON or
    None), raw, status (what was answered)."""

    def __init__(self, script=()):
        self.script = list(script)
        self.requests = []
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as curl would use it

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                with outer.cond:
                    answer = outer.script.pop(0) if outer.script else 200
                    status, headers = answer if isinstance(answer, tuple) else (answer, {})
                    outer.requests.append({"t": time.monotonic(), "path": self.path,
                                           "headers": dict(self.headers), "body": body,
                                           "raw": raw, "status": status})
                    outer.cond.notify_all()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def snapshot(self):
        with self.lock:
            return list(self.requests)

    def delivered(self):
        """Bodies of the requests answered 2xx, in arrival order."""
        return [r["body"] for r in self.snapshot() if 200 <= r["status"] < 300]

    def wait_delivered(self, n, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while sum(1 for r in self.requests if 200 <= r["status"] < 300) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"webhook: {n} deliveries wanted, got "
                                       f"{[(r['status'], r['body']) for r in self.requests]}")
                self.cond.wait(left)
        return self.delivered()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class StalledReceiver:
    """Accepts connections (the kernel's backlog does) and never answers:
    a receiver that hangs every request until the client's timeout."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"

    def close(self):
        self.sock.close()


def closed_port_url():
    """A URL on a loopback port nothing listens on (bound, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/hook"
