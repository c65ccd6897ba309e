"""The progress display on stderr: one live line on a terminal, a line every few seconds otherwise."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


class Progress:
    def __init__(self, total_phases: int, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.total = total_phases
        self.index = 0
        self.label = ""
        self.duration = 0.0
        self.started = 0.0
        self.counts: tuple[int, int] | None = None
        self._last_line = 0.0
        self._lock = threading.Lock()
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()

    def say(self, message: str) -> None:
        with self._lock:
            self._clear()
            self.stream.write(f"[bench] {message}\n")
            self.stream.flush()

    def note(self, message: str) -> None:
        self.say(f"  {message}")

    def phase(self, label: str, duration: float) -> None:
        """Start a timed phase (a scenario's load, or a pgbench reference)."""
        self.finish()
        self.index += 1
        self.label, self.duration, self.started, self.counts = label, duration, time.monotonic(), None
        self._last_line = 0.0
        self._stop.clear()
        self._ticker = threading.Thread(target=self._tick, daemon=True)
        self._ticker.start()

    def update(self, elapsed: float, ok: int, errors: int) -> None:
        self.counts = (ok, errors)

    def finish(self, summary: str | None = None) -> None:
        if self._ticker is not None:
            self._stop.set()
            self._ticker.join()
            self._ticker = None
        if summary:
            self.say(f"{self.label}: {summary}")

    def _line(self) -> str:
        elapsed = time.monotonic() - self.started
        bar_width = 20
        filled = min(bar_width, int(bar_width * elapsed / max(self.duration, 0.001)))
        text = f"[bench] ({self.index}/{self.total}) {self.label:<28} [{'#' * filled}{'.' * (bar_width - filled)}] "
        text += f"{min(elapsed, self.duration):5.1f}/{self.duration:.0f}s"
        if self.counts is not None:
            ok, errors = self.counts
            rate = ok / elapsed if elapsed > 0 else 0.0
            text += f"  {ok:,} transfers ({rate:,.0f}/s)  {errors:,} errors"
        return text

    def _clear(self) -> None:
        if self.live:
            self.stream.write("\r\033[K")

    def _tick(self) -> None:
        while not self._stop.wait(0.25):
            with self._lock:
                now = time.monotonic()
                if self.live:
                    self.stream.write("\r\033[K" + self._line())
                    self.stream.flush()
                elif now - self._last_line >= 5.0:
                    self._last_line = now
                    self.stream.write(self._line() + "\n")
                    self.stream.flush()
        with self._lock:
            self._clear()
