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


class _Buffer:
    """The last records logged by one thread during one run."""

    def __init__(self) -> None:
        self.lines: deque[str] = deque(maxlen=MAX_LINES)
        self.dropped = 0


class _ByThreadHandler(logging.Handler):
    """One handler on the root logger for every run: a record goes to the buffer of the
    thread that logged it, if that thread is running a job.

    A handler per run, added and removed each time, would make every record pass through
    every running job's handler, each taking its own lock: with 20 jobs running at once,
    20 lock round trips a line. Here a record costs one dict lookup, and no lock is taken:
    only the logging thread ever writes its own buffer.
    """

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.buffers: dict[int, tuple[_Buffer, int]] = {}

    def handle(self, record: logging.LogRecord) -> bool:
        entry = self.buffers.get(record.thread)  # type: ignore[arg-type]
        if entry is None or record.levelno < entry[1]:
            return False
        buffer = entry[0]
        if len(buffer.lines) == buffer.lines.maxlen:
            buffer.dropped += 1
        buffer.lines.append(_FORMAT.format(record))
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self.handle(record)


_HANDLER = _ByThreadHandler()
_install_lock = threading.Lock()


class Captured:
    """The log tail of one run."""

    def __init__(self, buffer: _Buffer) -> None:
        self._buffer = buffer

    def text(self) -> tuple[str, bool]:
        """Return the tail (at most MAX_CHARS) and whether anything was cut."""
        text = "\n".join(self._buffer.lines)
        cut = self._buffer.dropped > 0 or len(text) > MAX_CHARS
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
    if _HANDLER not in root.handlers:
        with _install_lock:
            if _HANDLER not in root.handlers:
                root.addHandler(_HANDLER)
    thread = threading.get_ident()
    buffer = _Buffer()
    outer = _HANDLER.buffers.get(thread)  # a job that runs another job inline
    _HANDLER.buffers[thread] = (buffer, level)
    try:
        yield Captured(buffer)
    finally:
        if outer is None:
            del _HANDLER.buffers[thread]
        else:
            _HANDLER.buffers[thread] = outer
