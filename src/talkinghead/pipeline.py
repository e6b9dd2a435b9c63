"""Overlap the stages of a per-frame loop: each stage in its own thread, bounded queues between them.

    for result in pipeline(reader, [locate, render], depth=2):   # decode | locate | render | (the caller)
        writer.write(result)

The items are taken from ``items`` in a thread of their own (decoding a video), then each stage runs in its own
thread on the previous stage's results, one item at a time, in order; the caller receives the last stage's results
in order. Each stage sees exactly the items, in exactly the order, that the sequential loop
``for item in items: result = render(locate(item))`` would give it, so stateful stages (tracking, smoothing) give
identical results. The threads overlap where the heavy calls release the GIL (PyAV decoding and encoding, cv2,
PyTorch operators, dlib's detector and shape predictor). Queues hold at most ``depth`` items, so memory stays flat
in the video's length: a slow stage makes the ones before it wait.

An exception in any thread (or in ``items``) is raised in the caller, with its traceback; when the caller stops
early (breaks, or the generator is closed), the threads stop after their current item.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

_END = object()
"""Marks the end of a queue's items."""


class _Failure:
    """An exception raised in a pipeline thread, carried to the caller."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


def _put(out: queue.Queue, item: Any, stop: threading.Event) -> bool:
    """Put ``item`` unless the pipeline stopped (then False)."""
    while not stop.is_set():
        try:
            out.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _get(source: queue.Queue, stop: threading.Event) -> Any:
    while not stop.is_set():
        try:
            return source.get(timeout=0.1)
        except queue.Empty:
            continue
    return _END


def _feed(items: Iterable[Any], out: queue.Queue, stop: threading.Event) -> None:
    try:
        for item in items:
            if not _put(out, item, stop):
                return
        _put(out, _END, stop)
    except BaseException as error:  # noqa: BLE001 - handed to the caller, which raises it
        _put(out, _Failure(error), stop)


def _work(stage: Callable[[Any], Any], source: queue.Queue, out: queue.Queue, stop: threading.Event) -> None:
    while True:
        item = _get(source, stop)
        if item is _END or isinstance(item, _Failure):
            _put(out, item, stop)
            return
        try:
            result = stage(item)
        except BaseException as error:  # noqa: BLE001 - handed to the caller, which raises it
            _put(out, _Failure(error), stop)
            return
        if not _put(out, result, stop):
            return


def pipeline(items: Iterable[Any], stages: Sequence[Callable[[Any], Any]], depth: int = 2,
             name: str = "talkinghead") -> Iterator[Any]:
    """``stages[-1](...stages[0](item))`` for each item, in order, with ``items`` and each stage in its own thread
    (queues of ``depth`` items between them). See the module docstring."""
    if depth < 1:
        raise ValueError(f"pipeline depth must be >= 1, got {depth}")
    stop = threading.Event()
    queues = [queue.Queue(maxsize=depth) for _ in range(len(stages) + 1)]
    threads = [threading.Thread(target=_feed, args=(items, queues[0], stop), name=f"{name}-source", daemon=True)]
    for i, stage in enumerate(stages):
        threads.append(threading.Thread(target=_work, args=(stage, queues[i], queues[i + 1], stop),
                                        name=f"{name}-stage{i}", daemon=True))
    for thread in threads:
        thread.start()
    try:
        while True:
            item = queues[-1].get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5.0)


__all__ = ["pipeline"]
