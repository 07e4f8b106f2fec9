"""What every benchmark shares: A/B rounds, ratios, and the report.

These machines are noisy, so an absolute time means little: each figure is the ratio of
Steno's rate to a baseline's, both measured in the same run, in rounds that alternate the
two so that a slow spell of the machine hits both. A figure reports the ratio's minimum,
median and maximum over its rounds, the medians of both rates, the target it is held to
and the parameters it ran with.
"""

from __future__ import annotations

import enum
import json
import os
import platform
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

# A rate: how many of the figure's units per second one measurement achieved.
Measurement = Callable[[], float]
_T = TypeVar("_T")


class Scale(enum.Enum):
    """How much a run measures: FULL for the figures the README quotes, QUICK for a look in
    a few minutes, TINY for the smoke test, which only checks that every benchmark still
    runs and reports its figures."""

    FULL = "full"
    QUICK = "quick"
    TINY = "tiny"

    def pick(self, *, full: _T, quick: _T, tiny: _T) -> _T:
        """This scale's choice among the three."""
        return {Scale.FULL: full, Scale.QUICK: quick, Scale.TINY: tiny}[self]


@dataclass(frozen=True)
class Figure:
    """One benchmark's result, round by round: Steno's rate over the baseline's (``unit``
    "x"), or, for the few figures with an absolute target (a latency, a memory peak), the
    values themselves."""

    name: str
    values: list[float]
    unit: str = "x"
    baseline: str = ""
    # What it should reach (or, when lower is better, stay under); None: for information.
    target: float | None = None
    lower_is_better: bool = False
    params: dict[str, object] = field(default_factory=dict)
    # The median rates behind a ratio, with their unit.
    rates: dict[str, str] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        return self.median <= self.target if self.lower_is_better else self.median >= self.target

    def as_dict(self) -> dict[str, object]:
        return {
            **asdict(self),
            "min": min(self.values),
            "median": self.median,
            "max": max(self.values),
            "met": self.met,
        }


def ab_rounds(
    name: str,
    *,
    unit: str,
    baseline: str,
    measure_baseline: Measurement,
    measure_steno: Measurement,
    rounds: int,
    target: float | None = None,
    params: dict[str, object] | None = None,
) -> Figure:
    """Runs the baseline and Steno ``rounds`` times each, alternating which goes first, after
    one unmeasured warm-up of each."""
    measure_baseline()
    measure_steno()
    baseline_rates: list[float] = []
    steno_rates: list[float] = []
    for number in range(rounds):
        order = [measure_baseline, measure_steno]
        if number % 2:
            order.reverse()
        rates = {id(m): m() for m in order}
        baseline_rates.append(rates[id(measure_baseline)])
        steno_rates.append(rates[id(measure_steno)])
    return Figure(
        name,
        [s / b for s, b in zip(steno_rates, baseline_rates, strict=True)],
        baseline=baseline,
        target=target,
        params=params or {},
        rates={
            "baseline": f"{statistics.median(baseline_rates):.4g} {unit}",
            "steno": f"{statistics.median(steno_rates):.4g} {unit}",
        },
    )


def _value(value: float, unit: str) -> str:
    return f"{value:.2f}x" if unit == "x" else f"{value:.4g} {unit}".rstrip()


def _target(figure: Figure) -> str:
    if figure.target is None:
        return ""
    return f"{'<=' if figure.lower_is_better else '>='} {_value(figure.target, figure.unit)}"


@dataclass
class Report:
    """The run's figures: printed as they come, then written as JSON and Markdown."""

    command: str
    scale: Scale
    figures: list[Figure] = field(default_factory=list)
    # Which benchmark (python -m bench --only NAME) gave each figure, by the figure's name.
    benchmark_of: dict[str, str] = field(default_factory=dict)
    started: datetime = field(default_factory=lambda: datetime.now(UTC))

    @staticmethod
    def machine() -> str:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        python = f"{platform.python_implementation()} {platform.python_version()}"
        return f"{os.cpu_count()} cores, {memory:.0f} GiB, {python}"

    def start(self) -> None:
        print(f"{self.command} on {self.machine()}")
        print(f"{'figure':<46} {'min':>9} {'median':>9} {'max':>9}  {'target':<11} vs")

    def add(self, figure: Figure, benchmark: str = "") -> None:
        self.figures.append(figure)
        self.benchmark_of[figure.name] = benchmark
        verdict = {True: "met", False: "MISSED", None: ""}[figure.met]
        print(
            f"{figure.name:<46} {_value(min(figure.values), figure.unit):>9} "
            f"{_value(figure.median, figure.unit):>9} {_value(max(figure.values), figure.unit):>9}"
            f"  {_target(figure):<11} {figure.baseline} {verdict}".rstrip(),
            flush=True,
        )

    @property
    def missed(self) -> list[Figure]:
        return [figure for figure in self.figures if figure.met is False]

    def write(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        document = {
            "command": self.command,
            "scale": self.scale.value,
            "date": self.started.isoformat(timespec="seconds"),
            "machine": self.machine(),
            "figures": [
                {"benchmark": self.benchmark_of[figure.name], **figure.as_dict()}
                for figure in self.figures
            ],
        }
        (directory / "latest.json").write_text(json.dumps(document, indent=2) + "\n")
        (directory / "latest.md").write_text(self.markdown())

    def markdown(self) -> str:
        lines = [
            f"Measured {self.started:%Y-%m-%d} on {self.machine()} with `{self.command}`. "
            "A ratio is Steno's rate over the baseline's in the same run; min, median and "
            "max are over the rounds.",
            "",
            "| figure | baseline | min | median | max | target |",
            "|---|---|---|---|---|---|",
        ]
        for f in self.figures:
            target = _target(f) + {True: " ✓", False: " ✗", None: ""}[f.met]
            lines.append(
                f"| {f.name} | {f.baseline} | {_value(min(f.values), f.unit)} "
                f"| {_value(f.median, f.unit)} | {_value(max(f.values), f.unit)} | {target} |"
            )
        return "\n".join(lines) + "\n"
