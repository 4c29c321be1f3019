"""The MQTT transport of uplinks against a real Mosquitto broker the test
starts (Debian's `mosquitto`): batches are QoS 1 PUBLISHes, the broker's
PUBACK is the acknowledgement. The broker is restarted mid-stream; a
subscriber with a persistent session collects every message, decodes it
with the reference decoder (docs/examples/outpost_batch.py) and
deduplicates by position, and must end up with exactly the readings the
edge acknowledged, in order per sensor."""

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from outpost_proc import metric_value, scaled, wait_until

ROOT = Path(__file__).resolve().parents[3]
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
# make soak (OUTPOST_SOAK=1) restarts the broker more often mid-stream.
RESTARTS = 8 if os.environ.get("OUTPOST_SOAK", "") not in ("", "0") else 1

pytestmark = pytest.mark.skipif(not Path(MOSQUITTO).exists(),
                                reason="mosquitto is not installed (scripts/deps.sh test)")


def load_decoder():
    spec = importlib.util.spec_from_file_location(
        "outpost_batch", ROOT / "docs" / "examples" / "outpost_batch.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    def __init__(self, tmp_path):
        self.port = free_port()
        self.dir = tmp_path / "mosquitto"
        self.dir.mkdir()
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {self.dir}/\nautosave_interval 1\n"
            "max_queued_messages 100000\n"
            # Run as root it would switch to the mosquitto user, which cannot
            # write the persistence file into this test directory.
            + ("user root\n" if os.geteuid() == 0 else ""))
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return True
            except OSError:
                return None
        wait_until(up, scaled(10), what="the broker to listen")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # saves its persistence file
            self.proc.wait(timeout=scaled(10))


class Subscriber:
    """A persistent-session QoS 1 subscriber collecting raw payloads."""

    def __init__(self, port, topic):
        import paho.mqtt.client as mqtt
        self.messages = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(client_id="outpost-test-sub", clean_session=False)
        self.client.on_connect = lambda c, u, f, rc: c.subscribe(topic, qos=1)
        self.client.on_message = self.on_message
        self.client.reconnect_delay_set(min_delay=0.1, max_delay=0.5)
        self.client.connect("127.0.0.1", port, keepalive=5)
        self.client.loop_start()

    def on_message(self, client, userdata, msg):
        with self.lock:
            self.messages.append(bytes(msg.payload))

    def stop(self):
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path)
    b.start()
    yield b
    b.stop()


def post(d, readings):
    r = d.post_readings(readings)
    assert r.status_code == 201, r.text


def test_mqtt_uplink_survives_a_broker_restart(outpost_factory, broker, tmp_path):
    dec = load_decoder()
    sub = Subscriber(broker.port, "site/batches")
    try:
        edge = outpost_factory(config={"uplink.cloud": {
            "url": f"mqtt://127.0.0.1:{broker.port}/site/batches",
            "batch_age": "50ms", "batch_points": 500, "timeout": "2s",
            "backoff_min": "50ms", "backoff_max": "300ms"}})
        t0 = 1732200000000
        sent = []

        def burst(k):
            rows = [{"sensor": f"m/s{j % 5}", "value": (k * 1000 + j) / 4, "ts": t0 + k * 1000 + j}
                    for j in range(300)]
            post(edge, rows)
            sent.extend(rows)

        for k in range(5):
            burst(k)
        wait_until(lambda: (metric_value(edge.metrics(), "outpost_uplink_readings_total",
                                         uplink="cloud") or 0) >= len(sent),
                   scaled(20), what="the first bursts to be acknowledged")
        for cycle in range(RESTARTS):
            k0 = 5 + cycle * 10
            broker.stop()
            for k in range(k0, k0 + 5):  # while the broker is down: they wait in the outbox
                burst(k)
            time.sleep(0.5)  # let the uplink fail at least once against the closed port
            broker.start()
            for k in range(k0 + 5, k0 + 10):
                burst(k)
        wait_until(lambda: (metric_value(edge.metrics(), "outpost_uplink_readings_total",
                                         uplink="cloud") or 0) >= len(sent),
                   scaled(30), what="everything to be acknowledged after the restart")
        assert (metric_value(edge.metrics(), "outpost_uplink_batches_total", uplink="cloud",
                             result="failed") or 0) >= 1

        # The subscriber gets what the broker has (it may get a batch twice).
        def collected():
            with sub.lock:
                msgs = list(sub.messages)
            got = {}
            for m in msgs:
                b = dec.decode_batch(m)
                for sensor, ts, value, pos in b.readings:
                    got[(b.node, pos)] = (sensor, ts, value)
            return got if len(got) >= len(sent) else None
        try:
            got = wait_until(collected, scaled(30), what="the subscriber to have every reading")
        except TimeoutError:
            with sub.lock:
                msgs = list(sub.messages)
            poss = sorted(p for m in msgs for (_, _, _, p) in dec.decode_batch(m).readings)
            raise AssertionError(f"{len(msgs)} messages, {len(set(poss))} positions of "
                                 f"{len(sent)}: first {poss[:3]} last {poss[-3:]}")
        by_pos = [got[k] for k in sorted(got)]
        assert len(by_pos) == len(sent)
        node = sorted(got)[0][0]
        want = [(f"{r['sensor']}", r["ts"], r["value"]) for r in sent]
        assert sorted(by_pos) == sorted(want)
        # per-sensor order: positions follow the order of acknowledgement
        for s in {r["sensor"] for r in sent}:
            mine = [(ts, v) for (n, pos), (sensor, ts, v) in sorted(got.items()) if sensor == s]
            assert mine == [(r["ts"], r["value"]) for r in sent if r["sensor"] == s]
        assert node
    finally:
        sub.stop()


def test_mqtt_url_errors(outpost_bin, tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("[uplink.c]\nurl = mqtt://broker\n")
    r = subprocess.run([str(outpost_bin), "run", "--config", str(conf)], capture_output=True,
                       text=True, timeout=scaled(30), cwd=tmp_path)
    assert r.returncode == 2 and f"{conf}:2:" in r.stderr and "topic" in r.stderr, r.stderr
