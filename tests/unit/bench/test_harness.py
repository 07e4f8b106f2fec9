"""The benchmark harness: A/B rounds that alternate, ratios with their spread, and the table
written as JSON and Markdown with the fields the README quotes."""

from __future__ import annotations

import json
from pathlib import Path

from bench.harness import Figure, Report, Scale, ab_rounds


def test_rounds_alternate_which_side_goes_first_and_report_ratios() -> None:
    calls: list[str] = []
    baseline_rates = iter([99.0, 100.0, 100.0, 100.0, 100.0])  # the first is the warm-up
    steno_rates = iter([1.0, 50.0, 90.0, 70.0, 80.0])

    def baseline() -> float:
        calls.append("baseline")
        return next(baseline_rates)

    def steno() -> float:
        calls.append("steno")
        return next(steno_rates)

    figure = ab_rounds("x", unit="MiB/s", baseline="direct", measure_baseline=baseline,
                       measure_steno=steno, rounds=4, target=0.75)  # fmt: skip
    assert calls[2:] == ["baseline", "steno", "steno", "baseline"] * 2
    assert figure.values == [0.5, 0.9, 0.7, 0.8]
    assert (min(figure.values), figure.median, max(figure.values)) == (0.5, 0.75, 0.9)
    assert figure.met is True
    assert figure.rates == {"baseline": "100 MiB/s", "steno": "75 MiB/s"}


def test_a_lower_is_better_figure_is_met_under_its_target() -> None:
    assert Figure("p99", [40.0], unit="ms", target=100, lower_is_better=True).met is True
    assert Figure("p99", [140.0], unit="ms", target=100, lower_is_better=True).met is False
    assert Figure("info", [1.0]).met is None


def test_the_report_is_written_as_json_and_markdown(tmp_path: Path) -> None:
    report = Report("python -m bench --quick", Scale.QUICK)
    report.add(Figure("upload, one stream", [0.8, 0.9, 1.0], baseline="direct put", target=0.9))
    report.add(Figure("p99", [40.0], unit="ms", target=100, lower_is_better=True))
    report.write(tmp_path)

    document = json.loads((tmp_path / "latest.json").read_text())
    assert document["command"] == "python -m bench --quick" and document["scale"] == "quick"
    assert "cores" in document["machine"] and document["date"]
    upload = document["figures"][0]
    assert (upload["min"], upload["median"], upload["max"], upload["met"]) == (0.8, 0.9, 1.0, True)
    markdown = (tmp_path / "latest.md").read_text()
    assert "| upload, one stream | direct put | 0.80x | 0.90x | 1.00x | >= 0.90x ✓ |" in markdown
    assert "| p99 |  | 40 ms | 40 ms | 40 ms | <= 100 ms ✓ |" in markdown
    assert report.missed == []
