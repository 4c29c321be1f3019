"""A network partition between the edge and its receiver, made with a
network namespace and a veth pair the test creates and removes: the
receiver runs inside the namespace on its veth address (the one exception
to 127.0.0.1 in the suite), the edge outside. Taking the namespace's end of
the link down makes packets vanish (timeouts, then unreachable), for
longer than several backoff periods, while the edge keeps ingesting; after
the link comes back everything arrives exactly once. Skipped where
`ip netns add` is not permitted."""

import os
import subprocess

import pytest

from outpost_proc import Outpost, scaled, wait_until
from uplink_kit import (Ledger, assert_exact, edge_config, node_id, receiver_config,
                        receiver_count, settle, size, uplink_metric, uplink_url)


def ip(*args, check=True):
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {r.stderr.strip()}")
    return r


class NetnsLink:
    """A namespace and a veth pair: host end (this namespace) and ns end,
    a /30 of 10.231.0.0/16 chosen from the PID so parallel runs differ."""

    def __init__(self):
        pid = os.getpid()
        self.ns = f"opup{pid}"
        self.host_if, self.ns_if = f"oph{pid}", f"opn{pid}"
        base = (pid % 16384) * 4
        net = f"10.231.{base // 256}"
        self.host_addr, self.ns_addr = f"{net}.{base % 256 + 1}", f"{net}.{base % 256 + 2}"

    def create(self):
        r = ip("netns", "add", self.ns, check=False)
        if r.returncode != 0:
            pytest.skip(f"cannot create a network namespace here (needs root/CAP_SYS_ADMIN):"
                        f" {r.stderr.strip() or r.returncode}")
        ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if,
           "netns", self.ns)
        ip("addr", "add", f"{self.host_addr}/30", "dev", self.host_if)
        ip("link", "set", self.host_if, "up")
        ip("-n", self.ns, "addr", "add", f"{self.ns_addr}/30", "dev", self.ns_if)
        ip("-n", self.ns, "link", "set", self.ns_if, "up")
        ip("-n", self.ns, "link", "set", "lo", "up")

    def partition(self):
        ip("-n", self.ns, "link", "set", self.ns_if, "down")

    def heal(self):
        ip("-n", self.ns, "link", "set", self.ns_if, "up")

    def remove(self):
        # Deleting the namespace takes its veth end, and so the pair, along.
        ip("netns", "del", self.ns, check=False)
        if ip("link", "show", self.host_if, check=False).returncode == 0:
            ip("link", "del", self.host_if, check=False)


class NsOutpost(Outpost):
    """A daemon run inside a namespace (`ip netns exec` execs it, so the
    PID is the daemon's), reached on its veth address."""

    def __init__(self, workdir, ns, addr, **kw):
        self.ns, self.addr = ns, addr
        super().__init__(workdir, **kw)

    def command(self):
        return ["ip", "netns", "exec", self.ns] + super().command()

    @property
    def base(self):
        return f"{self.scheme}://{self.addr}:{self.port}"


@pytest.fixture
def netns_link():
    link = NetnsLink()
    try:
        link.create()
        yield link
    finally:
        link.remove()


@pytest.mark.timeout(size(180, 1800))
def test_partition_longer_than_backoff(netns_link, outpost_factory, tmp_path):
    link = netns_link
    rx = NsOutpost(tmp_path / "rx", link.ns, link.ns_addr, bin=outpost_factory.bin,
                   config=receiver_config(0, host=link.ns_addr, insecure_bind="true"))
    # insecure_bind: the veth address is reachable only from this test's
    # two namespaces; tokens and TLS are covered elsewhere.
    outpost_factory.daemons.append(rx)  # stopped (by PID) at teardown, before the netns goes
    rx.start()
    edge = outpost_factory(config=edge_config(uplink_url(rx, host=link.ns_addr),
                                              timeout="1s", backoff_min="20ms",
                                              backoff_max="250ms"), name="edge")
    node = node_id(edge)
    led = Ledger(["net/a", "net/b", "net/c"])
    led.ingest(edge, size(500, 5000))
    settle(edge, rx, node, led.total, what="the first readings before any partition")

    def failed():
        return uplink_metric(edge, "outpost_uplink_batches_total", result="failed")
    for _ in range(size(2, 5)):
        before_rx = receiver_count(rx, node)
        led.ingest(edge, size(600, 5000))
        # Cut the link once this upload is under way (or done).
        wait_until(lambda: receiver_count(rx, node) > before_rx, scaled(30),
                   what="the upload to start")
        link.partition()
        f0 = failed()
        # Keep ingesting through the partition; it lasts several backoff
        # periods (each attempt a timeout or an unreachable host).
        led.ingest(edge, size(300, 3000))
        wait_until(lambda: failed() >= f0 + size(4, 20), scaled(size(60, 600)), interval=0.1,
                   what="several failed attempts during the partition")
        led.ingest(edge, size(300, 3000))
        link.heal()
        settle(edge, rx, node, led.total)
        assert_exact(rx, node, led.acked)
    assert uplink_metric(edge, "outpost_uplink_batches_total", result="dead") == 0
