"""A fake cloud for the uplink fault matrix (tests/integration/09_uplink),
in threads of the test process (STYLE.md: fake upstreams live here).

UplinkFake listens on a port of its own (127.0.0.1 unless told) and takes
POSTs the way an uplink receiver would. What it does with each request
comes from a script, one action per request in arrival order; when the
script is empty it forwards to the real receiver (`upstream`) if it has
one, else answers 200. Actions:

  200, (status, {header: value}) or (status, {header: value}, body)
                 answer that, without forwarding;
  "forward"      relay the request to the upstream receiver, relay its
                 answer (no upstream answer: the connection is dropped);
  "forward_drop" relay it, then drop the connection instead of answering
                 (a receiver killed after its commit, before its answer);
  "stall"        read the request, never answer: the handler waits until
                 the client gives up and closes (or the fake is closed);
  "reset"        read half of the body, then reset the connection (RST).

Every request is recorded as a dict as soon as it arrives (listed in
arrival order): t (monotonic, when its head arrived), t_end (when the fake
was done with it; None while it is in progress), action, status (what the client
was answered; 0 when it got no answer; for "forward_drop" the upstream's
status), upstream (the upstream's status, for forwards), headers, raw
(the body), batch (the clear header of an OPB1 batch: flags, node,
uplink, seq) and json (the body parsed, for the JSON format).
"""

import http.client
import http.server
import json
import select
import socket
import struct
import threading
import time
from urllib.parse import urlsplit

FORWARD, FORWARD_DROP, STALL, RESET = "forward", "forward_drop", "stall", "reset"


def parse_batch_header(raw):
    """The clear header of an OPB1 batch (docs/internals/uplink.md):
    magic, u8 flags, str8 node, str8 uplink, u64 LE seq. None if raw is
    not one."""
    try:
        if raw[:4] != b"OPB1":
            return None
        flags, at = raw[4], 5
        nl = raw[at]
        node = raw[at + 1:at + 1 + nl].decode()
        at += 1 + nl
        ul = raw[at]
        uplink = raw[at + 1:at + 1 + ul].decode()
        at += 1 + ul
        (seq,) = struct.unpack_from("<Q", raw, at)
        return {"flags": flags, "node": node, "uplink": uplink, "seq": seq}
    except (IndexError, struct.error, UnicodeDecodeError):
        return None


def answer_of(action):
    """(status, headers, body bytes) of a scripted answer."""
    if isinstance(action, int):
        return action, {}, b"ok"
    status, headers, *rest = action
    body = rest[0] if rest else b"ok"
    return status, headers, body.encode() if isinstance(body, str) else body


class UplinkFake:
    def __init__(self, upstream=None, script=(), host="127.0.0.1"):
        """upstream: the real receiver's URL (http://host:port/v1/uplink),
        may be set or changed later (the attribute is read per request)."""
        self.upstream = upstream
        self.script = list(script)
        self.requests = []
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.closing = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as curl uses it

            def do_POST(self):
                outer._serve(self)

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # dropped and reset connections are the point here

        self.server = Server((host, 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    # ---- addresses ---------------------------------------------------------
    @property
    def port(self):
        return self.server.server_address[1]

    @property
    def url(self):
        return f"http://{self.server.server_address[0]}:{self.port}/v1/uplink"

    # ---- script ------------------------------------------------------------
    def push(self, *actions):
        """Appends actions to the script."""
        with self.lock:
            self.script.extend(actions)

    def _next_action(self):
        if self.script:
            return self.script.pop(0)
        return FORWARD if self.upstream else 200

    # ---- serving -------------------------------------------------------------
    def _serve(self, h):
        t0 = time.monotonic()
        with self.cond:
            action = self._next_action()
        length = int(h.headers.get("Content-Length", 0))
        rec = {"t": t0, "t_end": None, "action": action, "status": 0, "upstream": None,
               "headers": dict(h.headers), "raw": b"", "batch": None, "json": None}
        with self.cond:
            self.requests.append(rec)
            self.cond.notify_all()
        try:
            if action == RESET:
                rec["raw"] = h.rfile.read(length // 2)
                rec["batch"] = parse_batch_header(rec["raw"])
                self._abort(h)
                return
            rec["raw"] = raw = h.rfile.read(length)
            rec["batch"] = parse_batch_header(raw)
            if h.headers.get("Content-Type", "").startswith("application/json"):
                try:
                    rec["json"] = json.loads(raw)
                except ValueError:
                    pass
            if action == STALL:
                self._wait_client_gone(h)
                self._abort(h)
                return
            if action in (FORWARD, FORWARD_DROP):
                answer = self._forward(h, raw)
                if answer is None:
                    self._abort(h)
                    return
                status, headers, body = answer
                rec["upstream"] = status
                if action == FORWARD_DROP:
                    rec["status"] = status
                    self._abort(h)
                    return
            else:
                status, headers, body = answer_of(action)
            rec["status"] = status
            h.send_response(status)
            for k, v in headers.items():
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
            h.wfile.flush()
        finally:
            with self.cond:
                rec["t_end"] = time.monotonic()
                self.cond.notify_all()

    def _forward(self, h, raw):
        """(status, headers to relay, body) from the upstream, or None."""
        if not self.upstream:
            return None
        u = urlsplit(self.upstream)
        hdrs = {k: v for k, v in h.headers.items()
                if k.lower() in ("content-type", "authorization")}
        try:
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
            try:
                c.request("POST", u.path or "/", body=raw, headers=hdrs)
                r = c.getresponse()
                body = r.read()
                relay = {k: v for k, v in r.getheaders()
                         if k.lower() in ("content-type", "retry-after")}
                return r.status, relay, body
            finally:
                c.close()
        except OSError:
            return None

    def _wait_client_gone(self, h):
        """Blocks until the client closes its end (its timeout) or close()."""
        sock = h.connection
        while not self.closing.is_set():
            r, _, _ = select.select([sock], [], [], 0.05)
            if r:
                try:
                    if not sock.recv(65536, socket.MSG_PEEK):
                        return
                    sock.recv(65536)  # a pipelined byte: not expected, drop it
                except OSError:
                    return

    @staticmethod
    def _abort(h):
        """Closes the connection with a reset, no answer."""
        h.close_connection = True
        try:
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    struct.pack("ii", 1, 0))
        except OSError:
            pass
        for f in (h.rfile, h.wfile):
            try:
                f.close()
            except (OSError, ValueError):
                pass
        try:
            h.connection.close()
        except OSError:
            pass

    # ---- what happened ---------------------------------------------------------
    def snapshot(self):
        with self.lock:
            return list(self.requests)

    def wait_requests(self, pred, timeout, what="requests"):
        """Waits until pred(list of records) is truthy; returns it."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                v = pred(list(self.requests))
                if v:
                    return v
                left = deadline - time.monotonic()
                if left <= 0:
                    summary = [(r["action"], r["status"], (r["batch"] or {}).get("seq"))
                               for r in self.requests]
                    raise TimeoutError(f"uplink fake: timed out waiting for {what}; "
                                       f"requests so far: {summary[-40:]}")
                self.cond.wait(min(left, 0.2))

    def close(self):
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()
