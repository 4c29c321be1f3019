"""receiver.bind_node: a sender may only send as itself. Its `node` token's
name (or its certificate's CN) must be its node id; another node's valid
token gets 403 node_mismatch, which the edge retries (never a dead letter),
and the right one delivers everything once."""

from outpost_proc import scaled, wait_until
from test_uplink_security import token
from uplink_kit import (Ledger, assert_exact, dead_letters, edge_config, edge_pending, node_id,
                        receiver_config, settle, uplink_metric, uplink_url)


def test_bind_node(outpost_factory, outpost_bin):
    rx_placeholder = outpost_factory(config=receiver_config(), name="tmp")
    edge = outpost_factory(config=edge_config(uplink_url(rx_placeholder)), name="edge")
    node = node_id(edge)
    assert edge.stop() == 0
    assert rx_placeholder.stop() == 0

    mine_tok, mine_line = token(outpost_bin, "node", node)
    other_tok, other_line = token(outpost_bin, "node", "0123456789abcdef")
    admin_tok, admin_line = token(outpost_bin, "admin", "the-test")
    auth = {"token": [mine_line, other_line, admin_line], "max_failures": 1000000}
    rx = outpost_factory(config=receiver_config(auth=auth, receiver={"bind_node": "true"}),
                         name="rx", token=admin_tok)

    edge.write_config(edge_config(uplink_url(rx), token=other_tok))
    edge.restart()
    led = Ledger(["bind/a"])
    led.ingest(edge, 300)
    wait_until(lambda: uplink_metric(edge, "outpost_uplink_batches_total", result="failed") >= 3,
               scaled(30), what="refusals of another node's token")
    assert dead_letters(edge) == []
    assert edge_pending(edge) == led.total
    assert "HTTP 403" in edge.all_stderr()

    assert edge.stop() == 0
    edge.write_config(edge_config(uplink_url(rx), token=mine_tok))
    edge.restart()
    settle(edge, rx, node, led.total)
    assert_exact(rx, node, led.acked, http_check=False)
