"""What an evaluation may ask the gateway besides its inputs: the time and the log."""

from __future__ import annotations

from typing import Callable, Optional

LEVELS = ("trace", "debug", "info", "warn", "error")


class Context:
    """The clock and log of one evaluation. In the component they are the gateway's
    (``host.now``, ``host.log``); natively (fixtures, pytest) the fixture's ``now`` and a
    list of lines kept in :attr:`lines`."""

    def __init__(self, now: Callable[[], int], log: Optional[Callable[[str, str], None]] = None):
        self._now = now
        self._log = log
        self.lines: list[tuple[str, str]] = []

    @classmethod
    def at(cls, now: int) -> "Context":
        """A context whose clock reads ``now`` and whose log is kept in :attr:`lines`."""
        return cls(lambda: now)

    def now(self) -> int:
        """Unix time in seconds, as the gateway sees it."""
        return self._now()

    def log(self, level: str, message: str) -> None:
        """A line in the gateway's log (truncated and rate-limited by the gateway)."""
        if level not in LEVELS:
            raise ValueError(f"level {level!r} is not one of {', '.join(LEVELS)}")
        if self._log is None:
            self.lines.append((level, message))
        else:
            self._log(level, message)
