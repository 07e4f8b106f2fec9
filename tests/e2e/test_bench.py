"""The benchmark suite still runs: every benchmark on tiny inputs, one round, through
``python -m bench --tiny`` as ``make bench`` runs it, and the table it writes holds each
benchmark's figures with the fields the README's table is made of. What the figures say
is not checked here: ``make bench`` measures them, on a quiet machine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.__main__ import BENCHMARKS
from tests.conftest import S3Server
from tests.support import outer_env

FIELDS = {"benchmark", "name", "values", "unit", "baseline", "target", "lower_is_better",
          "params", "rates", "min", "median", "max", "met"}  # fmt: skip


def test_every_benchmark_runs_and_reports_its_figures(s3_server: S3Server, tmp_path: Path) -> None:
    env = {
        **outer_env(),
        "STENO_TEST_S3_ENDPOINT": s3_server.endpoint,
        "STENO_TEST_S3_ACCESS_KEY": s3_server.access_key,
        "STENO_TEST_S3_SECRET_KEY": s3_server.secret_key,
    }
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--tiny", "--results", str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr

    document = json.loads((tmp_path / "latest.json").read_text())
    assert document["scale"] == "tiny" and document["machine"]
    figures = document["figures"]
    assert {figure["benchmark"] for figure in figures} == set(BENCHMARKS)
    for figure in figures:
        assert set(figure) == FIELDS, figure["name"]
        assert figure["values"] and all(value >= 0 for value in figure["values"]), figure
        assert figure["min"] <= figure["median"] <= figure["max"]
        if figure["unit"] == "x":  # a ratio names what it is a ratio to, and both rates
            assert figure["baseline"] and set(figure["rates"]) >= {"baseline", "steno"}
    table = (tmp_path / "latest.md").read_text()
    for figure in figures:
        assert f"| {figure['name']} |" in table
        assert figure["name"] in done.stdout
