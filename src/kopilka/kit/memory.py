"""Garbage-collector settings for bulk work."""

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# Bulk work allocates many objects per batch and keeps them until the batch commits; with
# the default thresholds the collector would walk them again and again (a third of an
# import's CPU time) although they form almost no reference cycles.
BULK_THRESHOLDS = (50_000, 20, 1_000)


@contextmanager
def few_collections() -> Iterator[None]:
    """Collect garbage rarely while bulk work runs: what the process loaded before is
    frozen out of the collector's reach, and young objects are collected in larger steps.
    Reference cycles are still collected, only later."""
    before = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*BULK_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


SERVING_THRESHOLDS = (10_000, 20, 20)


def freeze_startup_objects() -> None:
    """For a long-running server: what start-up loaded (modules, the app, compiled programs'
    code) stays for the life of the process, so it is frozen out of the collector's reach;
    collections then walk only what requests allocate, which shortens the pauses they add
    to a request's latency."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*SERVING_THRESHOLDS)
