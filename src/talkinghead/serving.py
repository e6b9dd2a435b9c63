"""Running a local server in the foreground until the user stops it (the app and the user study share this)."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable


def serve_until_stopped(close: Callable[[], None], stopping_message: str | None = None) -> None:
    """Sleep until Ctrl-C or SIGTERM (so `kill` cleans up too), then put SIGTERM's handler back and ``close()``."""

    def stop(signum, frame) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        if stopping_message:
            print(stopping_message, flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
        close()
