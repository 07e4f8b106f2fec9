"""The ``steno`` command as a person sees it, against a running ``steno dev``: stderr is a
pseudo-terminal, where an upload shows its bytes, rate and time left and ``upload --wait``
and ``watch`` a live line with the job's state; stdout, a pipe, gets the results alone.
With stderr a pipe too, the output is the plain one scripts have always read."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jiwer
import pytest

from tests.support import AUDIO, SPEECH_TEXT, normalise, outer_env, steno_dev

SPEECH = AUDIO / "speech.wav"
# A control sequence: a cursor move, a colour, the cursor hidden and shown again.
ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
BAR = r"━+"
# The job's live line: a spinner (a tick once done), the job, its state, progress, time.
JOB_LINE = r"\S job {job_id} {state} +" + BAR + r" +{percent}% \d+:\d\d:\d\d"


@dataclass(frozen=True)
class Dev:
    address: str
    workdir: Path


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    workdir = tmp_path_factory.mktemp("steno-dev")
    with steno_dev(workdir) as address:
        yield Dev(address, workdir)


@dataclass(frozen=True)
class Shown:
    """What one ``steno`` command did: its exit status, its stdout, and what its stderr
    showed (control sequences removed)."""

    status: int
    out: str
    err: str

    def frames(self) -> list[str]:
        """Each state of stderr's live lines as it was drawn (over the one before)."""
        return [frame.strip() for frame in re.split(r"[\r\n]+", self.err) if frame.strip()]

    def drew(self, pattern: str) -> bool:
        """Whether some frame was ``pattern``, whole."""
        return any(re.fullmatch(pattern, frame) for frame in self.frames())


def environment() -> dict[str, str]:
    # The terminal's size comes from the pty, not from variables of the shell running this.
    outer = {k: v for k, v in outer_env().items() if k not in ("COLUMNS", "LINES")}
    return {**outer, "TERM": "xterm-256color"}


def steno_at_terminal(dev: Dev, *args: str) -> Shown:
    """``steno ARGS`` with stderr a 120-column pseudo-terminal and stdout a pipe."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    shown: list[bytes] = []

    def read_terminal() -> None:
        # Until the command is gone: the terminal's last end closed reads as EIO.
        while True:
            try:
                data = os.read(controller, 65536)
            except OSError:
                return
            if not data:
                return
            shown.append(data)

    reader = threading.Thread(target=read_terminal)
    try:
        with subprocess.Popen(
            [sys.executable, "-m", "steno.cli", *args, "--server", dev.address],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=terminal,
            cwd=dev.workdir,
            env=environment(),
        ) as process:
            os.close(terminal)
            reader.start()
            out, _ = process.communicate(timeout=180)
        reader.join(timeout=30)
    finally:
        os.close(controller)
    screen = b"".join(shown).decode()
    return Shown(process.returncode, out.decode(), ESCAPE.sub("", screen))


def steno_piped(dev: Dev, *args: str) -> Shown:
    """``steno ARGS`` with stdout and stderr pipes, as a script runs it."""
    done = subprocess.run(
        [sys.executable, "-m", "steno.cli", *args, "--server", dev.address],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=dev.workdir,
        env=environment(),
    )
    return Shown(done.returncode, done.stdout, done.stderr)


def assert_transcript(text: str) -> None:
    assert jiwer.wer(normalise(SPEECH_TEXT), normalise(text)) <= 0.3, text


def test_upload_shows_the_bytes_sent_the_rate_and_the_time_left(dev: Dev) -> None:
    shown = steno_at_terminal(dev, "upload", str(SPEECH))

    assert shown.status == 0, shown.err
    assert re.fullmatch(f"{UUID}\n", shown.out), "stdout has the job id alone"
    # speech.wav is 257,058 bytes, all sent at the end, with no time left.
    sent = r"uploading speech\.wav " + BAR + r" 257\.1/257\.1 kB \d+\.\d [kMG]?B/s ETA 0:00:00"
    assert re.fullmatch(sent, shown.frames()[-1]), shown.err


def test_upload_wait_shows_the_jobs_state_live_and_prints_the_transcript(dev: Dev) -> None:
    shown = steno_at_terminal(dev, "upload", str(SPEECH), "--wait", "--timeout", "120")

    assert shown.status == 0, shown.err
    assert_transcript(shown.out)
    [job_id] = re.findall(f"job ({UUID})", shown.err)[:1]
    assert shown.drew(JOB_LINE.format(job_id=job_id, state="PROCESSING", percent=r"\d+"))
    assert re.fullmatch(
        JOB_LINE.format(job_id=job_id, state="COMPLETED", percent="100"), shown.frames()[-1]
    )
    assert "waiting…" not in shown.err, "the plain output's note is for scripts"


def test_watch_shows_a_live_line_and_prints_a_line_per_change(dev: Dev) -> None:
    uploaded = steno_piped(dev, "upload", str(SPEECH))
    job_id = uploaded.out.strip()

    shown = steno_at_terminal(dev, "watch", job_id, "--timeout", "120")

    assert shown.status == 0, shown.err
    lines = shown.out.splitlines()
    assert all(re.fullmatch(r"(QUEUED|PROCESSING|COMPLETED) +\d+%", line) for line in lines)
    assert lines[-1].split() == ["COMPLETED", "100%"]
    assert re.fullmatch(
        JOB_LINE.format(job_id=job_id, state="COMPLETED", percent="100"), shown.frames()[-1]
    )


def test_piped_output_is_plain(dev: Dev) -> None:
    uploaded = steno_piped(dev, "upload", str(SPEECH))
    assert (uploaded.status, uploaded.err) == (0, "")
    assert re.fullmatch(f"{UUID}\n", uploaded.out)

    waited = steno_piped(dev, "upload", str(SPEECH), "--wait", "--timeout", "120")
    assert waited.status == 0, waited.err
    assert re.fullmatch(f"job {UUID} queued; waiting…\n", waited.err)
    assert_transcript(waited.out)
