"""Uplink delivery without faults and across outages: the happy path with
several batches, a receiver that starts late, an edge and a receiver both
killed and restarted. Each case ends with the receiver holding exactly
what the edge acknowledged (uplink_kit.assert_exact)."""

import pytest

from outpost_proc import scaled, wait_until
from uplink_kit import (Ledger, PortHold, assert_exact, edge_config, edge_pending, metric,
                        node_id, receiver_config, receiver_count, settle, size, uplink_metric,
                        uplink_url)


@pytest.mark.timeout(size(120, 1200))
def test_happy_path_several_batches(outpost_factory):
    rx = outpost_factory(config=receiver_config(), name="rx")
    edge = outpost_factory(config=edge_config(uplink_url(rx)), name="edge")
    node = node_id(edge)
    led = Ledger([f"line{i}/temp" for i in range(4)] + ["line0/press"])
    per = size(800, 20000)
    led.ingest(edge, per)
    settle(edge, rx, node, led.total)
    assert_exact(rx, node, led.acked)

    batches = uplink_metric(edge, "outpost_uplink_batches_total", result="acked")
    assert batches >= led.total // 400, batches  # batch_points = 400: several batches
    assert uplink_metric(edge, "outpost_uplink_readings_total") == led.total
    assert uplink_metric(edge, "outpost_uplink_batches_total", result="failed") == 0
    assert uplink_metric(edge, "outpost_uplink_batches_total", result="dead") == 0
    raw = uplink_metric(edge, "outpost_uplink_bytes_total", stage="raw")
    wire = uplink_metric(edge, "outpost_uplink_bytes_total", stage="wire")
    assert 0 < wire < raw, (raw, wire)
    assert metric(rx, "outpost_receiver_readings_total", result="stored") == led.total
    assert metric(rx, "outpost_receiver_readings_total", result="duplicate") == 0
    wait_until(lambda: uplink_metric(edge, "outpost_uplink_last_acked_batch") == batches,
               scaled(10), what="outpost_uplink_last_acked_batch to reach the batches acked")
    wait_until(lambda: uplink_metric(edge, "outpost_uplink_backlog_readings") == 0,
               scaled(10), what="the backlog gauge to reach 0")


@pytest.mark.timeout(size(120, 1200))
def test_receiver_down_for_a_while(outpost_factory):
    hold = PortHold()
    try:
        edge = outpost_factory(config=edge_config(hold.url), name="edge")
        node = node_id(edge)
        led = Ledger(["a/x", "b/y", "c/z"])
        led.ingest(edge, size(600, 10000))

        # Nobody listens: the edge keeps failing, counting, and keeping it all.
        def failed_a_few():
            return uplink_metric(edge, "outpost_uplink_batches_total", result="failed") >= 5
        wait_until(failed_a_few, scaled(30), what="several failed attempts")
        assert edge_pending(edge) == led.total
        wait_until(lambda: uplink_metric(edge, "outpost_uplink_backlog_readings") == led.total,
                   scaled(10), what="the backlog gauge to show every reading")
        assert uplink_metric(edge, "outpost_uplink_oldest_unsent_age_seconds") > 0
        led.ingest(edge, size(300, 5000))

        rx = outpost_factory(config=receiver_config(hold.port), name="rx")
        settle(edge, rx, node, led.total)
        assert_exact(rx, node, led.acked)
        assert uplink_metric(edge, "outpost_uplink_batches_total", result="dead") == 0
    finally:
        hold.close()


@pytest.mark.timeout(size(180, 1800))
def test_both_restarted(outpost_factory):
    hold = PortHold()
    try:
        rx = outpost_factory(config=receiver_config(hold.port), name="rx")
        edge = outpost_factory(config=edge_config(hold.url), name="edge")
        node = node_id(edge)
        led = Ledger([f"s{i}" for i in range(6)])
        rounds = size(3, 20)
        for k in range(rounds):
            before = receiver_count(rx, node)
            led.ingest(edge, size(400, 3000))
            # Kill both once this round's upload is under way (or done).
            wait_until(lambda: receiver_count(rx, node) > before or edge_pending(edge) == 0,
                       scaled(30), what="the upload to be under way")
            if k % 2 == 0:
                rx.kill9()
                edge.kill9()
            else:
                assert edge.stop() == 0
                assert rx.stop() == 0
            # The edge comes back first, with the receiver still down.
            edge.restart()
            led.ingest(edge, size(200, 1000))
            rx.restart()
        settle(edge, rx, node, led.total)
        assert_exact(rx, node, led.acked)
    finally:
        hold.close()
