"""Fixtures of the uplink fault matrix: uplink_fake(upstream=..., script=...)
starts a fake cloud (fakes/uplink.py) that is closed at teardown."""

import pytest

from fakes.uplink import UplinkFake


@pytest.fixture
def uplink_fake():
    made = []

    def make(**kw):
        made.append(UplinkFake(**kw))
        return made[-1]
    yield make
    for f in made:
        f.close()
