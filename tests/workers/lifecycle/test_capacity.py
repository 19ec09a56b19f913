"""The room above a high disk watermark, in each form the engines accept, and on the real target."""

from __future__ import annotations

import pytest
from opensearchpy import OpenSearch

from migration_pipeline.sandbox.state import SandboxState
from workers.lifecycle.capacity import room_above, target_capacity

GIB = 1 << 30


@pytest.mark.parametrize(("watermark", "room"), [
    ("90%", 200 * GIB),  # a used share: 10% of the 1000 GiB must stay free
    ("0.9", 200 * GIB),
    ("50gb", 250 * GIB),  # an absolute size is what must stay free
    ("500mb", 300 * GIB - 500 * (1 << 20)),
])
def test_room_above_each_watermark_form(watermark: str, room: int) -> None:
    assert room_above(watermark, total=1000 * GIB, free=300 * GIB) == room


def test_no_room_below_the_watermark() -> None:
    assert room_above("95%", total=100 * GIB, free=2 * GIB) == 0


def test_target_capacity_of_the_real_target(sandbox: SandboxState) -> None:
    capacity = target_capacity(OpenSearch(hosts=[sandbox.engines["target"].url], timeout=60))
    assert capacity.nodes == 1
    assert 0 < capacity.free_bytes <= capacity.total_bytes
    assert capacity.high_watermark  # the engine's default, or what the sandbox set
    assert 0 <= capacity.room_bytes <= capacity.free_bytes
