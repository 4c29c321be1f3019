#!/usr/bin/python3
"""Small helpers for bench/http/run.sh (Debian's /usr/bin/python3, standard library only).

  probe.py freeport
      Print a free TCP port on 127.0.0.1.
  probe.py wait PORT PATH TIMEOUT_S [PID]
      Poll GET PATH until it answers 200; exit 0, or 1 on timeout or when PID has exited.
  probe.py post|put PORT PATH BODY
      POST BODY (JSON) once; print "STATUS BODY" on one line (a sanity check).
  probe.py startup ... (see below)
      Start a server several times and print the time from spawn to its first 200.

With PROBE_TLS=1 in the environment, wait and post speak HTTPS (certificate not
verified: the benchmark's own self-signed server).

startup: probe.py startup --runs N --cpu C --path /readyz [--render SRC=DST] -- CMD ARGS...
  In CMD, "{port}" is replaced by a free port chosen for each start, and "{fresh}" by a
  fresh empty directory (removed afterwards). --render writes SRC to DST before each
  start with the same replacements (in DST's path too), for config files (nginx). The server is spawned pinned to CPU C (this
  process moves to C only for the spawn, so the child inherits the mask without a
  preexec hook, then moves back). The clock starts just before the spawn and stops when
  a complete "HTTP/1.1 200" status line has been read; the poll loop retries every
  0.2 ms and runs on this process's own CPU. The server is then stopped with SIGTERM
  (its whole process group with SIGKILL after 10 s). Prints one line:
      STARTUP runs=N ok=K median_ms=... min_ms=... max_ms=... all_ms=a,b,c term_rc=r,r,r
"""
import os
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connect(port, timeout):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if os.environ.get("PROBE_TLS") != "1":
        return s
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx.wrap_socket(s)


def get_status(port, path, timeout=1.0):
    """One GET; returns the status code, or None if the connection failed."""
    try:
        with connect(port, timeout) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
            buf = b""
            while b"\r\n" not in buf:
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
            parts = buf.split(b" ", 2)
            if len(parts) >= 2 and parts[0].startswith(b"HTTP/"):
                return int(parts[1])
    except (OSError, ValueError):
        pass
    return None


def cmd_send(method, port, path, body):
    data = body.encode()
    try:
        with connect(port, 5) as s:
            s.sendall(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                      f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode() + data)
            buf = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
    except OSError as e:
        print(f"000 {e}")
        return 1
    head, _, rest = buf.partition(b"\r\n\r\n")
    parts = head.split(b" ", 2)
    status = parts[1].decode() if len(parts) >= 2 else "000"
    print(status, rest.decode(errors="replace").strip().replace("\n", " "))
    return 0


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def cmd_wait(port, path, timeout_s, pid=None):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pid is not None and not alive(pid):
            return 1
        if get_status(port, path) == 200:
            return 0
        time.sleep(0.005)
    return 1


class Stop(Exception):
    pass


def on_term(signum, frame):
    raise Stop()


def stop(proc):
    """SIGTERM the server, then SIGKILL its process group after 10 s. Returns its exit code."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # leftovers (workers) of the group we created
    except OSError:
        pass
    return proc.wait()


def cmd_startup(runs, cpu, path, render, argv):
    home = os.sched_getaffinity(0)
    times, rcs = [], []
    for _ in range(runs):
        port = free_port()
        fresh = tempfile.mkdtemp(prefix="outpost-bench-start-")
        def sub(a):
            return a.replace("{port}", str(port)).replace("{fresh}", fresh)
        args = [sub(a) for a in argv]
        if render:
            src, dst = render.split("=", 1)
            with open(src) as f:
                text = f.read()
            with open(sub(dst), "w") as f:
                f.write(sub(text))
        proc = None
        try:
            os.sched_setaffinity(0, {cpu})
            t0 = time.monotonic()
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True)
            os.sched_setaffinity(0, home)
            ok = False
            while time.monotonic() - t0 < 30:
                if proc.poll() is not None:
                    break
                if get_status(port, path) == 200:
                    ok = True
                    break
                time.sleep(0.0002)
            t1 = time.monotonic()
            if ok:
                times.append((t1 - t0) * 1000.0)
        finally:
            os.sched_setaffinity(0, home)
            if proc is not None:
                rcs.append(stop(proc))
            shutil.rmtree(fresh, ignore_errors=True)
    if times:
        print("STARTUP runs=%d ok=%d median_ms=%.1f min_ms=%.1f max_ms=%.1f all_ms=%s term_rc=%s" % (
            runs, len(times), statistics.median(times), min(times), max(times),
            ",".join("%.1f" % t for t in times), ",".join(str(r) for r in rcs)))
    else:
        print("STARTUP runs=%d ok=0 term_rc=%s" % (runs, ",".join(str(r) for r in rcs)))
    return 0 if times else 1


def main(argv):
    signal.signal(signal.SIGTERM, on_term)
    if len(argv) >= 1 and argv[0] == "freeport":
        print(free_port())
        return 0
    if len(argv) == 4 and argv[0] in ("post", "put"):
        return cmd_send(argv[0].upper(), int(argv[1]), argv[2], argv[3])
    if len(argv) in (4, 5) and argv[0] == "wait":
        return cmd_wait(int(argv[1]), argv[2], float(argv[3]), int(argv[4]) if len(argv) == 5 else None)
    if len(argv) >= 1 and argv[0] == "startup" and "--" in argv:
        sep = argv.index("--")
        opts = dict(zip(argv[1:sep:2], argv[2:sep:2]))
        return cmd_startup(int(opts.get("--runs", "5")), int(opts.get("--cpu", "0")),
                           opts.get("--path", "/readyz"), opts.get("--render"), argv[sep + 1:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (Stop, KeyboardInterrupt):
        sys.exit(130)
