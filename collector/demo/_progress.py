"""The demo's progress while it backfills and waits: one line rewritten in place on a terminal, plain lines
(a few, not one per update) when the output is a file or a pipe, so a log stays readable."""

from __future__ import annotations

import sys
import time
from typing import TextIO

_CLEAR_LINE = "\r\033[K"


class Progress:
    """Reports a step's progress; :meth:`done` ends the step with its last line."""

    def __init__(self, out: TextIO | None = None, plain_every_s: float = 5.0) -> None:
        self.out = out or sys.stdout
        self.live = self.out.isatty()
        self.plain_every_s = plain_every_s
        self._last_plain = time.monotonic()
        self._shown = False

    def update(self, text: str) -> None:
        if self.live:
            self.out.write(_CLEAR_LINE + text)
            self.out.flush()
            self._shown = True
            return
        now = time.monotonic()
        if now - self._last_plain >= self.plain_every_s:
            self._last_plain = now
            print(text, file=self.out, flush=True)

    def done(self, text: str) -> None:
        if self.live and self._shown:
            self.out.write(_CLEAR_LINE)
        print(text, file=self.out, flush=True)
        self._shown = False
        self._last_plain = time.monotonic()
