"""Two more things an uplink must get right: HTTPS with mutual TLS to a
receiver that maps the edge's client certificate to the `node` role (and a
receiver certificate from another CA is retried, never dead-lettered), and
`important_only`, which must ship exactly the readings a rule marked,
although the rules mark them after they were committed."""

import pytest

from certs import pki  # noqa: F401 - fixture
from outpost_proc import scaled, wait_until
from uplink_kit import (Ledger, assert_exact, edge_config, edge_pending, node_id, settle,
                        uplink_metric)


def tls_receiver(outpost_factory, pki, name="rx"):  # noqa: F811
    cfg = {"store": {"sync": "normal"},
           "tls": {"cert": str(pki.server), "key": str(pki.server_key),
                   "client_ca": str(pki.ca)},
           "auth": {"cert_role": "edge-01 node"}}
    return outpost_factory(config=cfg, name=name, ca=pki.ca, client_cert=pki.client_pair)


def https_url(d):
    return f"https://127.0.0.1:{d.port}/v1/uplink"


def test_https_with_mutual_tls(outpost_factory, pki):  # noqa: F811
    rx = tls_receiver(outpost_factory, pki)
    edge = outpost_factory(config=edge_config(https_url(rx), ca=str(pki.ca),
                                              cert=str(pki.client), key=str(pki.client_key)),
                           name="edge")
    node = node_id(edge)
    led = Ledger(["tls/a", "tls/b"])
    led.ingest(edge, 600, chunk=200)
    settle(edge, rx, node, led.total)
    assert_exact(rx, node, led.acked, http_check=False)
    assert uplink_metric(edge, "outpost_uplink_batches_total", result="dead") == 0


def test_untrusted_receiver_is_retried_not_dead(outpost_factory, pki):  # noqa: F811
    rx = tls_receiver(outpost_factory, pki)
    edge = outpost_factory(config=edge_config(https_url(rx), ca=str(pki.ca2),
                                              cert=str(pki.client), key=str(pki.client_key)),
                           name="edge")
    led = Ledger(["tls/a"])
    led.ingest(edge, 50)
    wait_until(lambda: uplink_metric(edge, "outpost_uplink_batches_total", result="failed") >= 3,
               scaled(30), what="failed TLS attempts")
    assert uplink_metric(edge, "outpost_uplink_batches_total", result="dead") == 0
    assert edge_pending(edge) == led.total


def test_important_only_ships_exactly_the_marked_readings(outpost_factory):
    rx = outpost_factory(config={"store": {"sync": "normal"}}, name="rx")
    cfg = edge_config(f"http://127.0.0.1:{rx.port}/v1/uplink", important_only="true")
    cfg["rule.hot"] = {"kind": "threshold", "sensors": "imp/*", "above": "30", "clear": "25",
                       "important": "true"}
    edge = outpost_factory(config=cfg, name="edge")
    node = node_id(edge)
    t0 = 1732200000000
    series = [20, 31, 35, 26, 24, 20, 19, 40, 41, 10, 5]
    # Marked: from the reading that fires to the one that resolves, both
    # episodes (31..24 and 40..10).
    want = {"imp/t": [(t0 + i, float(v)) for i, v in enumerate(series) if 1 <= i <= 4 or 7 <= i <= 9]}
    for i, v in enumerate(series):
        r = edge.post_readings([{"sensor": "imp/t", "value": v, "ts": t0 + i},
                                {"sensor": "other/x", "value": v, "ts": t0 + i}])
        assert r.status_code == 201, r.text
    settle(edge, rx, node, sum(map(len, want.values())))
    wait_until(lambda: edge_pending(edge) == 0, scaled(30), what="the edge to pass everything")
    assert_exact(rx, node, want, http_check=False)
