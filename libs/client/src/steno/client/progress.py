"""What the ``steno`` command shows a person while it works: an upload's bytes, rate and
time left, and a job's state and progress as they change.

All of it goes to stderr, and only when stderr is a terminal. Piped or redirected, the
command prints just what it always has, so a script sees the same output whether or not
someone watches; results go to stdout either way.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from steno.client.output import state_name
from steno.client.uploading import SentBytes
from steno.v1 import job_pb2

# Told each new version of a job being followed.
JobSeen = Callable[[job_pb2.Job], None]


def terminal() -> Console | None:
    """A console on stderr if stderr is a terminal; None means plain output."""
    return Console(stderr=True) if sys.stderr.isatty() else None


@contextmanager
def upload_bar(console: Console | None, path: Path) -> Iterator[SentBytes | None]:
    """A bar of the file's bytes sent, the rate and the time left, while the block runs;
    yields what to tell the bytes sent so far (None without a terminal: nothing to show)."""
    if console is None:
        yield None
        return
    size = path.stat().st_size
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    # Nothing else prints while the file goes: stdout is left alone.
    with Progress(*columns, console=console, redirect_stdout=False, redirect_stderr=False) as bar:
        task = bar.add_task(f"uploading {path.name}", total=size)
        yield lambda sent: bar.update(task, completed=sent)


@contextmanager
def job_line(console: Console | None, job_id: str) -> Iterator[JobSeen]:
    """A line with the job's state, progress and time taken, while the block runs; yields
    what to tell each new version of the job (which does nothing without a terminal)."""
    if console is None:
        yield lambda job: None
        return
    columns = (
        SpinnerColumn(finished_text="✓"),
        TextColumn("job {task.fields[job_id]}"),
        TextColumn("{task.fields[state]:<10}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )
    # Lines printed to stdout meanwhile go above the live line when both are the
    # terminal (else they would break it); stdout elsewhere is left alone.
    with Progress(
        *columns, console=console, redirect_stdout=sys.stdout.isatty(), redirect_stderr=False
    ) as line:
        task = line.add_task("", total=1.0, job_id=job_id, state="…")

        def seen(job: job_pb2.Job) -> None:
            # Drawn now, so every state shows, however briefly it lasted.
            line.update(task, completed=job.progress, state=state_name(job), refresh=True)

        yield seen
