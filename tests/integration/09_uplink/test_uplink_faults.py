"""Uplink faults staged by the fake cloud (fakes/uplink.py) in front of a
real receiver: 5xx and 429 + Retry-After, a stall past the timeout, a
connection reset mid-body, the edge killed mid-upload, an answer lost after
the receiver's commit, and a poison batch. Each case ends with the receiver
holding exactly what the edge acknowledged (minus a dead letter's readings,
which the edge shows in its dead_letters table)."""

import json
import os

import pytest

from fakes.uplink import FORWARD, FORWARD_DROP, RESET, STALL
from outpost_proc import fill_filesystem, scaled, wait_until
from uplink_kit import (Ledger, PortHold, assert_exact, dead_letters, edge_config, edge_pending,
                        edge_rows_between, metric, node_id, receiver_config, receiver_count,
                        settle, size, uplink_metric, uplink_url)


def answered(recs):
    return [r for r in recs if r["t_end"] is not None]


def batch_seqs(recs):
    return [r["batch"]["seq"] for r in recs if r["batch"]]


def failed(edge):
    return uplink_metric(edge, "outpost_uplink_batches_total", result="failed")


@pytest.mark.timeout(size(120, 1200))
def test_5xx_then_429_with_retry_after(outpost_factory, uplink_fake):
    rx = outpost_factory(config=receiver_config(), name="rx")
    fake = uplink_fake(upstream=uplink_url(rx),
                 script=[500, 503, (503, {"Retry-After": "0"}), (429, {"Retry-After": "2"})])
    # backoff_max below the Retry-After: the receiver's longer wait wins.
    edge = outpost_factory(config=edge_config(fake.url, backoff_max="300ms"), name="edge")
    node = node_id(edge)
    led = Ledger(["r/a", "r/b"])
    led.ingest(edge, size(600, 5000))
    settle(edge, rx, node, led.total)
    assert_exact(rx, node, led.acked)

    recs = answered(fake.snapshot())
    assert [r["status"] for r in recs[:5]] == [500, 503, 503, 429, 200], \
        [r["status"] for r in recs]
    # Every retry resends the same batch, with the same sequence number.
    assert batch_seqs(recs[:5]) == [1] * 5
    assert len({r["raw"] for r in recs[:5]}) == 1
    assert all(r["status"] == 200 for r in recs[4:])
    assert batch_seqs(recs[4:]) == list(range(1, len(recs) - 3))
    # The 429's Retry-After: 2 was honoured although backoff_max is 300 ms
    # (timing is the point here; the bounds are generous: at least the 2 s
    # asked, plus slack).
    gap = recs[4]["t"] - recs[3]["t_end"]
    assert 1.9 <= gap <= scaled(3 + 5), gap
    assert failed(edge) == 4
    assert uplink_metric(edge, "outpost_uplink_batches_total", result="dead") == 0


@pytest.mark.timeout(size(120, 1200))
def test_stall_past_the_timeout(outpost_factory, uplink_fake):
    rx = outpost_factory(config=receiver_config(), name="rx")
    fake = uplink_fake(upstream=uplink_url(rx), script=[FORWARD, STALL, STALL])
    edge = outpost_factory(config=edge_config(fake.url, timeout="500ms"), name="edge")
    node = node_id(edge)
    led = Ledger(["st/a", "st/b", "st/c"])
    led.ingest(edge, size(500, 5000))
    settle(edge, rx, node, led.total)
    assert_exact(rx, node, led.acked)

    recs = fake.snapshot()
    stalls = [r for r in recs if r["action"] == STALL]
    assert len(stalls) == 2
    # The edge gave up on each stalled request after about its timeout.
    for r in stalls:
        assert 0.4 <= r["t_end"] - r["t"] <= scaled(10), r["t_end"] - r["t"]
    assert batch_seqs(recs[1:4]) == [2, 2, 2]
    assert failed(edge) == 2


@pytest.mark.timeout(size(120, 1200))
def test_connection_reset_mid_body(outpost_factory, uplink_fake):
    rx = outpost_factory(config=receiver_config(), name="rx")
    fake = uplink_fake(upstream=uplink_url(rx), script=[RESET, FORWARD, RESET, RESET])
    edge = outpost_factory(config=edge_config(fake.url), name="edge")
    node = node_id(edge)
    led = Ledger(["rs/a", "rs/b"])
    led.ingest(edge, size(600, 5000))
    settle(edge, rx, node, led.total)
    assert_exact(rx, node, led.acked)
    recs = fake.snapshot()
    assert [r["action"] for r in recs[:4]] == [RESET, FORWARD, RESET, RESET]
    assert batch_seqs(recs[:5]) == [1, 1, 2, 2, 2]
    assert all(len(r["raw"]) < len(recs[1]["raw"]) for r in recs[:1])  # half a body
    # libcurl itself resends once, on a fresh connection, a request whose
    # reused keep-alive connection died before any answer: two of the three
    # resets may be one failed attempt.
    assert 2 <= failed(edge) <= 3
    assert uplink_metric(edge, "outpost_uplink_batches_total", result="dead") == 0


@pytest.mark.timeout(size(120, 1200))
def test_edge_kill9_mid_upload(outpost_factory, uplink_fake):
    rx = outpost_factory(config=receiver_config(), name="rx")
    fake = uplink_fake(upstream=uplink_url(rx), script=[FORWARD, FORWARD, STALL])
    edge = outpost_factory(config=edge_config(fake.url, timeout="30s"), name="edge")
    node = node_id(edge)
    led = Ledger(["k/a", "k/b", "k/c"])
    led.ingest(edge, size(600, 5000))
    # The third batch hangs in the fake: kill the edge in the middle of it.
    fake.wait_requests(lambda recs: len(recs) >= 3, scaled(30), what="the stalled request")
    edge.kill9()
    edge.restart()
    led.ingest(edge, size(200, 2000))
    settle(edge, rx, node, led.total)
    assert_exact(rx, node, led.acked)

    # Then kill it again while batches flow, wherever that lands.
    before = len(fake.snapshot())
    led.ingest(edge, size(600, 5000))
    fake.wait_requests(lambda recs: len(recs) >= before + 2, scaled(30), what="more batches")
    edge.kill9()
    edge.restart()
    settle(edge, rx, node, led.total)
    assert_exact(rx, node, led.acked)
    # The batch in flight at the first kill was sent again with its number.
    seqs = batch_seqs(fake.snapshot())
    assert seqs[2] == seqs[3] == 3, seqs[:6]


@pytest.mark.timeout(size(120, 1200))
def test_answer_lost_after_commit_is_deduplicated(outpost_factory, uplink_fake):
    """A receiver killed after its commit but before its answer, emulated:
    the fake forwards the batch to the real receiver (which commits it) and
    drops the connection instead of relaying the 200. The edge resends; the
    receiver must take nothing twice."""
    rx = outpost_factory(config=receiver_config(), name="rx")
    fake = uplink_fake(upstream=uplink_url(rx),
                       script=[FORWARD, FORWARD_DROP, FORWARD_DROP, FORWARD])
    edge = outpost_factory(config=edge_config(fake.url), name="edge")
    node = node_id(edge)
    led = Ledger(["d/a", "d/b", "d/c"])
    led.ingest(edge, size(600, 5000))
    settle(edge, rx, node, led.total)
    assert_exact(rx, node, led.acked)

    recs = fake.snapshot()
    assert [r["upstream"] for r in recs[:4]] == [200, 200, 200, 200]
    assert batch_seqs(recs[:4]) == [1, 2, 2, 2]
    dups = metric(rx, "outpost_receiver_readings_total", result="duplicate")
    assert dups > 0
    # The second batch was stored once and acknowledged as duplicates twice.
    batch2 = recs[1]["raw"]
    assert recs[2]["raw"] == recs[3]["raw"] == batch2
    assert metric(rx, "outpost_receiver_readings_total", result="stored") == led.total
    assert uplink_metric(edge, "outpost_uplink_readings_total") == led.total


@pytest.mark.timeout(size(120, 1200))
def test_poison_batch_goes_to_dead_letters(outpost_factory, uplink_fake):
    rx = outpost_factory(config=receiver_config(), name="rx")
    refusal = json.dumps({"error": {"code": "poison", "message": "this batch never fits"}})
    fake = uplink_fake(upstream=uplink_url(rx),
                 script=[FORWARD, (422, {"Content-Type": "application/json"}, refusal)])
    edge = outpost_factory(config=edge_config(fake.url), name="edge")
    node = node_id(edge)
    led = Ledger(["p/a", "p/b"])
    led.ingest(edge, size(600, 5000))
    wait_until(lambda: dead_letters(edge), scaled(30), what="a dead letter")
    led.ingest(edge, size(300, 2000))  # later readings still go

    (uplink, seq, lo, hi, n, status, answer), = dead_letters(edge)
    assert (uplink, seq, status) == ("cloud", 2, 422)
    assert json.loads(answer) == json.loads(refusal)
    lost = edge_rows_between(edge, lo, hi)
    assert len(lost) == n == hi - lo + 1 > 0
    want = led.expected(drop=lost)
    settle(edge, rx, node, led.total - n)
    assert_exact(rx, node, want)
    assert uplink_metric(edge, "outpost_uplink_batches_total", result="dead") == 1
    assert failed(edge) == 0
    recs = fake.snapshot()
    assert recs[1]["status"] == 422 and recs[1]["batch"]["seq"] == 2
    # The uplink moved on: the next batch has the next number, no resend.
    assert batch_seqs(recs)[:3] == [1, 2, 3]
    assert edge_pending(edge) == 0


@pytest.mark.timeout(size(180, 1200))
def test_cursor_commits_fail_on_a_full_disk(outpost_factory, small_tmpfs):
    """The edge's disk is full when its receiver comes back: the receiver
    takes batches, but the edge cannot commit its cursor behind them (the
    uplink sends the next batches while a commit is in flight, so those are
    void too). Once there is space again, everything is sent again from
    the committed cursor and deduplicated: the receiver ends with exactly
    what the edge acknowledged."""
    hold = PortHold()
    edge = outpost_factory(config=edge_config(hold.url, batch_points=100),
                           data_dir=small_tmpfs / "data", name="edge")
    node = node_id(edge)
    led = Ledger(["df/a", "df/b"])
    led.ingest(edge, 500)
    dummy = small_tmpfs / "dummy"
    fill_filesystem(dummy)
    # Free pages in the database and WAL take some more; ingest until the
    # disk refuses (only what got 201 joins the ledger).
    for _ in range(1000):
        r = led.try_ingest(edge, 100)
        if r.status_code == 507:
            break
        assert r.status_code == 201, r.text
    else:
        pytest.fail("the disk never filled")

    full0 = metric(edge, "outpost_store_commit_errors_total", reason="full")
    rx = outpost_factory(config=receiver_config(port=hold.port), name="rx")
    hold.close()
    wait_until(lambda: receiver_count(rx, node) > 0 and
               metric(edge, "outpost_store_commit_errors_total", reason="full") > full0,
               scaled(30), what="batches received while the edge's commits fail")
    assert edge_pending(edge) > 0
    os.unlink(dummy)
    settle(edge, rx, node, led.total)
    assert_exact(rx, node, led.acked)
    assert metric(rx, "outpost_receiver_readings_total", result="duplicate") > 0
    assert uplink_metric(edge, "outpost_uplink_readings_total") >= led.total
