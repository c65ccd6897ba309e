"""shared/heap.py: what a service process does to its garbage collector at startup."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from shared import heap


@pytest.fixture
def restore_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restore_gc")
def test_settle_freezes_what_is_alive_and_makes_young_collections_rarer() -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    heap.settle()
    assert gc.get_freeze_count() > 1000  # this interpreter's imports, at least
    assert gc.get_threshold() == (heap.YOUNG_THRESHOLD, *heap.OLDER_THRESHOLDS)


@pytest.mark.usefixtures("restore_gc")
def test_cycles_made_after_settling_are_collected_without_being_asked() -> None:
    """No gc.collect() here: the cycle must go by the collector's own schedule, which a disabled
    collector or a threshold of 0 (never) would fail."""
    heap.settle()

    class Node:
        other: object = None

    a, b = Node(), Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    del a, b
    # Net allocations past the young threshold make the collector run by itself.
    kept = [[] for _ in range(3 * heap.YOUNG_THRESHOLD)]
    assert gone() is None
    assert len(kept) == 3 * heap.YOUNG_THRESHOLD
