"""What the bench tells a person watching it: step lines and bars that update in place.

Only on a terminal: when stderr is not a TTY (tests, CI, a redirect) nothing is written, so
logs never fill with carriage returns. Written here rather than taken from a library: the
bench needs one bar shape, and a dependency for it would be heavier than the bar.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import TextIO

__all__ = ["BAR_WIDTH", "REDRAW_S", "Bar", "Progress"]

BAR_WIDTH = 20
# Redraw at most this often: a measurement calls the bar after every run (sub-millisecond
# runs), and writing to the terminal between timed runs should cost next to nothing.
REDRAW_S = 0.1


class Progress:
    """Step lines (`progress("message")`) and bars (`with progress.bar(label, total)`) on
    `stream`, prefixed with the time since the run began; silent unless `stream` is a TTY."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream
        self.enabled = stream is not None and stream.isatty()
        self.started = time.monotonic()

    @classmethod
    def silent(cls) -> Progress:
        return cls(None)

    def prefix(self) -> str:
        return f"[bench {time.monotonic() - self.started:7.1f}s]"

    def __call__(self, message: str) -> None:
        if self.enabled and self.stream is not None:
            print(f"{self.prefix()} {message}", file=self.stream, flush=True)

    def bar(self, label: str, total: int) -> Bar:
        return Bar(self, label, total)


class Bar:
    """`[bench  12.3s] loading memories  [##########----------]  52% 5200/10000`, redrawn
    in place with a carriage return; the line is ended when the block exits (also on an
    error or Ctrl-C, so the next message starts on a line of its own)."""

    def __init__(self, progress: Progress, label: str, total: int) -> None:
        self.progress = progress
        self.label = label
        self.total = total
        self.done = 0
        self.drawn_at = -REDRAW_S
        self.width = 0  # of the last line drawn, to blank a longer one
        self.shown: tuple[str, int] | None = None  # label and count last drawn

    def __enter__(self) -> Bar:
        self._draw(force=True)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self.shown != (self.label, self.done):  # the last steps fell between redraws
            self._draw(force=True)
        if self.progress.enabled and self.progress.stream is not None:
            self.progress.stream.write("\n")
            self.progress.stream.flush()

    def advance(self, count: int = 1) -> None:
        self.done = min(self.done + count, self.total)
        self._draw(force=self.done == self.total)

    def relabel(self, label: str) -> None:
        """Say what the next step is before it starts (one slow step per item)."""
        self.label = label
        self._draw(force=True)

    def line(self) -> str:
        share = self.done / self.total if self.total else 1.0
        filled, percent = int(BAR_WIDTH * share), int(100 * share)
        return (f"{self.progress.prefix()} {self.label}  [{'#' * filled}"
                f"{'-' * (BAR_WIDTH - filled)}] {percent:3d}% {self.done}/{self.total}")

    def _draw(self, force: bool = False) -> None:
        stream = self.progress.stream
        if not self.progress.enabled or stream is None:
            return
        now = time.monotonic()
        if not force and now - self.drawn_at < REDRAW_S:
            return
        self.drawn_at = now
        self.shown = (self.label, self.done)
        text = self.line()
        stream.write("\r" + text.ljust(self.width))
        stream.flush()
        self.width = len(text)
