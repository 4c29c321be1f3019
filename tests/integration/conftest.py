"""Fixtures for the outpost integration suite.

`outpost` is a started daemon with its own temp data dir and generated config
(port 0, bounded poll of /readyz); `outpost_factory(config=..., sets=...)`
starts more, with other settings. At teardown every daemon still running is
stopped by PID with SIGTERM and must exit 0 with no sanitizer report; a
teardown failure names the daemon's work dir (config, stderr.N.log, data).
"""

import signal
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
pytest.register_assert_rewrite("outpost_proc")

import outpost_proc  # noqa: E402
from outpost_proc import Outpost, scaled  # noqa: E402

DEFAULT_TEST_TIMEOUT = 240


def pytest_report_header(config):
    return [f"outpost binary: {outpost_proc.default_bin()} "
            f"(sanitized={outpost_proc.SANITIZED}, time bounds x{outpost_proc.SLOWDOWN:g}), "
            f"SQLite extension: {outpost_proc.sqlite_ext()}"]


@pytest.fixture(scope="session")
def outpost_bin():
    b = outpost_proc.default_bin()
    if not b.exists():
        pytest.fail(f"outpost binary not found at {b}: build it (make build) or set OUTPOST_BIN",
                    pytrace=False)
    return b


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """A per-test wall-clock limit (SIGALRM in the main thread), so a hung
    daemon fails one test instead of the CI job. @pytest.mark.timeout(N)
    overrides the default; both are scaled under sanitizers."""
    m = item.get_closest_marker("timeout")
    limit = int(scaled(m.args[0] if m else DEFAULT_TEST_TIMEOUT))

    def on_alarm(signum, frame):
        raise TimeoutError(f"test exceeded its {limit}s limit")
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(limit)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


class Factory:
    def __init__(self, tmp_path, outpost_bin):
        self.tmp_path = tmp_path
        self.bin = outpost_bin
        self.daemons = []

    def __call__(self, config=None, sets=(), args=(), start=True, name=None, data_dir=None,
                 config_text=None, env=None, ca=None, client_cert=None, token=None):
        name = name or f"d{len(self.daemons)}"
        d = Outpost(self.tmp_path / name, config=config, sets=sets, args=args,
                    data_dir=data_dir, bin=self.bin, config_text=config_text, env=env,
                    ca=ca, client_cert=client_cert, token=token)
        self.daemons.append(d)
        if start:
            d.start()
        return d

    def teardown(self):
        problems = []
        for d in self.daemons:
            if d.running:
                try:
                    rc = d.stop(signal.SIGTERM, timeout=scaled(30))
                except outpost_proc.StartError as e:
                    problems.append(f"{d.workdir}: {e}")
                    continue
                if rc != 0:
                    problems.append(f"{d.workdir}: exit code {rc} after SIGTERM at teardown; "
                                    f"stderr tail:\n{d.stderr()[-3000:]}")
            reports = d.sanitizer_reports()
            if reports:
                problems.append(f"{d.workdir}: sanitizer reported {reports[:3]}; "
                                f"see {d.workdir}/stderr.*.log")
        return problems


@pytest.fixture
def outpost_factory(tmp_path, outpost_bin):
    f = Factory(tmp_path, outpost_bin)
    yield f
    problems = f.teardown()
    if problems:
        pytest.fail("daemon teardown:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture
def outpost(outpost_factory):
    """A daemon with the default settings, ready."""
    return outpost_factory()


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 4 MiB tmpfs mounted for this test (skipped where mounting is not
    permitted); unmounted at teardown, lazily if something still holds it."""
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root/CAP_SYS_ADMIN): "
                    f"{r.stderr.strip() or r.returncode}")
    try:
        yield mnt
    finally:
        r = subprocess.run(["umount", str(mnt)], capture_output=True, text=True)
        if r.returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
