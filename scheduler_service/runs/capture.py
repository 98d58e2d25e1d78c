"""Capture what a job logs while it runs, per thread, capped."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

MAX_LINES = 200
MAX_CHARS = 16_000
_FORMAT = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


class _ThreadHandler(logging.Handler):
    """Keep the last records logged by one thread."""

    def __init__(self, thread_id: int) -> None:
        super().__init__(logging.DEBUG)
        self.thread_id = thread_id
        self.lines: deque[str] = deque(maxlen=MAX_LINES)
        self.dropped = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread_id:
            return
        if len(self.lines) == self.lines.maxlen:
            self.dropped += 1
        self.lines.append(_FORMAT.format(record))


class Captured:
    """The log tail of one run."""

    def __init__(self, handler: _ThreadHandler) -> None:
        self._handler = handler

    def text(self) -> tuple[str, bool]:
        """Return the tail (at most MAX_CHARS) and whether anything was cut."""
        text = "\n".join(self._handler.lines)
        cut = self._handler.dropped > 0 or len(text) > MAX_CHARS
        return text[-MAX_CHARS:], cut


@contextmanager
def capture_logs(level: int = logging.INFO) -> Iterator[Captured]:
    """Collect records at ``level`` and above logged by this thread inside the block.

    The root logger is lowered to ``level`` if it is above it, so that INFO lines reach the
    capture; with no handler of its own configured that prints nothing more.
    """
    root = logging.getLogger()
    if root.level > level or root.level == logging.NOTSET:
        root.setLevel(level)
    handler = _ThreadHandler(threading.get_ident())
    handler.setLevel(level)
    root.addHandler(handler)
    try:
        yield Captured(handler)
    finally:
        root.removeHandler(handler)
