"""`aggregator poll` in a terminal: a progress bar (rich) of sources done, new items and
errors, with each failure printed above it as it happens."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from aggregator.logs import POLL_LOGGER
from aggregator.types import PollOutcome


class PollProgress:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.new = 0
        self.errors = 0
        self._lock = threading.Lock()
        self._progress = Progress(
            TextColumn("polling"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("sources  {task.fields[new]} new items  {task.fields[errors]} errors"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._task = self._progress.add_task("poll", total=None, new=0, errors=0)

    def start(self, total: int) -> None:
        self._progress.update(self._task, total=total)

    def done(self, outcome: PollOutcome) -> None:
        with self._lock:
            self.new += outcome.items_new
            if outcome.status in ("error", "gone"):
                self.errors += 1
                self._progress.console.print(f"[red]{outcome.source}[/red]: {outcome.error}")
            self._progress.update(self._task, advance=1, new=self.new, errors=self.errors)

    @contextmanager
    def shown(self) -> Iterator[None]:
        """The bar on screen; the per-poll log lines, which it replaces, held back."""
        polls = logging.getLogger(POLL_LOGGER)
        level = polls.level
        polls.setLevel(logging.ERROR)
        try:
            with self._progress:
                yield
        finally:
            polls.setLevel(level)


def run_with_progress(
    poll: Callable[..., tuple[PollOutcome, ...]], console: Console
) -> tuple[PollOutcome, ...]:
    """``poll(on_start=..., on_done=...)`` with a progress bar on ``console``."""
    progress = PollProgress(console)
    with progress.shown():
        return poll(on_start=progress.start, on_done=progress.done)
