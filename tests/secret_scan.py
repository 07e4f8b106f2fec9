"""A log scan over the whole test run: no secret the tests give Steno may show up in what it
logs.

Every log record of the test process (but the tests' own) is checked as it is emitted, at
INFO and above as the services log, and every log file the services' processes wrote under
the run's temporary directory is read when the run ends. A secret found fails the run,
saying where. The secrets are the test parts' own (the S3 secret key, the database's and
the broker's passwords, from the URLs the tests use) and anything shaped like a whole API
key, an OpenAI key or a URL with a password in it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

SHAPES = {
    # A whole API key; its id alone (stn_ and 32 hex digits) is public.
    "an API key": re.compile(r"stn_[0-9a-f]{32}_[A-Za-z0-9_-]{20,}"),
    "an OpenAI key": re.compile(r"\bsk-[A-Za-z0-9_-]{6,}"),
    # ("***" is one masked, as the start-up line shows the database's.)
    "a URL with a password": re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:(?!\*+@)[^/\s@]+@"),
}


def passwords(*urls: str) -> set[str]:
    return {password for url in urls if (password := urlsplit(url).password)}


@dataclass
class SecretScan:
    known: set[str] = field(default_factory=set)
    findings: list[str] = field(default_factory=list)
    records: int = 0
    files: int = 0

    def check(self, text: str, where: str) -> None:
        for name, shape in SHAPES.items():
            if found := shape.search(text):
                self.findings.append(f"{where}: {name} ({found.group()[:12]}…)")
        for secret in self.known:
            if secret in text:
                self.findings.append(f"{where}: a secret of the test setup ({secret[:3]}…)")

    def check_files(self, paths: Iterable[Path]) -> None:
        for path in paths:
            self.files += 1
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                self.check(line, f"{path.name}:{number}")


def secrets_in(text: str, *, known: Iterable[str] = ()) -> list[str]:
    """What :class:`SecretScan` finds in ``text``: the run's secrets and ``known`` ones."""
    scan = SecretScan(known=SCAN.known | set(known))
    scan.check(text, "text")
    return scan.findings


class _ScanningHandler(logging.Handler):
    def __init__(self, scan: SecretScan) -> None:
        super().__init__(logging.INFO)
        self._scan = scan
        self.setFormatter(logging.Formatter("%(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("tests"):
            return
        self._scan.records += 1
        text = self.format(record) + " " + " ".join(map(str, vars(record).values()))
        self._scan.check(text, f"log record of {record.name}")


SCAN = SecretScan()


def pytest_configure(config: pytest.Config) -> None:
    from tests.conftest import AMQP_URL, POSTGRES_URL, S3_SECRET

    # The broker's "guest" is its user name too, which may be logged: its URL's shape is
    # looked for instead.
    SCAN.known |= {S3_SECRET} | (passwords(POSTGRES_URL, AMQP_URL) - {"guest"})
    logging.getLogger().addHandler(_ScanningHandler(SCAN))
    # The services log at INFO; so does Steno in the test process.
    logging.getLogger("steno").setLevel(logging.INFO)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is not None:
        SCAN.check_files(factory.getbasetemp().rglob("*.log"))
    if SCAN.findings and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    scanned = f"{SCAN.records} log records and {SCAN.files} service log files"
    if not SCAN.findings:
        terminalreporter.write_line(f"secret scan: {scanned}, no secret found")
        return
    terminalreporter.section("secrets in the logs", red=True)
    for finding in SCAN.findings[:50]:
        terminalreporter.write_line(finding)
    terminalreporter.write_line(f"{len(SCAN.findings)} findings in {scanned}")
