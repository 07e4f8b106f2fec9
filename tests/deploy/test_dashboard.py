"""The Grafana dashboard queries only metrics the services define, and shows each of the
figures an operator watches."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

# Every module that defines a metric, imported for its registrations.
import steno.common.backlog_metrics
import steno.gateway.service
import steno.janitor.service
import steno.transcriber.service  # noqa: F401

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "steno-dashboard.json"

# The series a metric family exposes, by its type, besides its own name.
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created"),
}
# PromQL words that are not metric names: aggregation modifiers, set and vector-matching
# operators.
KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right",
    "and", "or", "unless", "bool", "offset",
}  # fmt: skip


def defined_series() -> set[str]:
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ()))
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings (inside matchers)
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors
    # Label lists of by (...), without (...), on (...), ignoring (...), group_left (...).
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for word in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*(\s*\()?", expr):
        called = word.group(1) is not None
        name = word.group(0).rstrip("( ")
        if not called and name not in KEYWORDS:
            names.add(name)
    return names


def panels() -> list[dict[str, Any]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def expressions() -> list[str]:
    return [target["expr"] for panel in panels() for target in panel["targets"]]


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'sum by (grpc_code) (rate(grpc_server_handled_total{grpc_code!="OK"}[5m]))'
            " / ignoring (grpc_code) group_left sum(rate(grpc_server_handled_total[5m]))",
            {"grpc_server_handled_total"},
        ),
        (
            "histogram_quantile(0.95, sum by (le) (rate(steno_transcribe_seconds_bucket[5m])))",
            {"steno_transcribe_seconds_bucket"},
        ),
        (
            "time() - max(steno_janitor_last_succes_timestamp)",
            {"steno_janitor_last_succes_timestamp"},
        ),
    ],
)
def test_the_names_of_an_expression_are_found(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_every_query_names_only_metrics_the_services_define() -> None:
    defined = defined_series()
    unknown = {
        name: expr for expr in expressions() for name in metric_names(expr) if name not in defined
    }
    assert unknown == {}


def test_the_dashboard_shows_what_an_operator_watches() -> None:
    used = set().union(*map(metric_names, expressions()))
    assert {
        "grpc_server_handled_total",
        "grpc_server_handling_seconds_bucket",
        "steno_upload_bytes_total",
        "steno_queue_messages",
        "steno_jobs",
        "steno_jobs_finished_total",
        "steno_transcribe_seconds_bucket",
        "steno_janitor_last_success_timestamp_seconds",
        "steno_disk_free_bytes",
    } <= used


def test_every_panel_queries_the_chosen_prometheus_under_its_own_id() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    [variable] = dashboard["templating"]["list"]
    assert (variable["type"], variable["query"]) == ("datasource", "prometheus")
    for panel in panels():
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
