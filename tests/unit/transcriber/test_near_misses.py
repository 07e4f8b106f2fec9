"""Near misses of a lexicon's variants: what is caught, and the bounds that keep plain
speech as it was (the rule is in steno.transcriber.rewriting's docstring)."""

from __future__ import annotations

from pathlib import Path

import pytest

from steno.common.lexicons import LexiconEntry, Replacement
from steno.transcriber.rewriting import Rewrite, Rewriter
from tests.lexicon_terms import ENTRIES as TERMS
from tests.lexicon_terms import PLAIN_TEXTS

from .test_rewriting import assert_offsets, entry


def rewrite(text: str, *entries: LexiconEntry, language: str | None = None) -> Rewrite:
    result = Rewriter(entries or TERMS, language=language).apply(text)
    assert_offsets(text, result)
    return result


# -- Caught -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # What tiny.en wrote for the spoken fixtures, a letter or two off a variant...
        ("ask Shivhan and Niamh", "ask Siobhan and Niamh"),
        ("If the post-rescule replica", "If the PostgreSQL replica"),
        # ... or off the phrase itself.
        ("the Raffana dashboard", "the Grafana dashboard"),
        # The same letters, spaced and hyphenated otherwise.
        ("scale the min i-o service", "scale the MinIO service"),
        ("with cube-control", "with kubectl"),
        # Case, punctuation around the window and what follows it are kept.
        ("SHIVHAN's report, (couwer nattie).", "Siobhan's report, (Kubernetes)."),
    ],
)
def test_a_near_miss_becomes_the_phrase(text: str, expected: str) -> None:
    assert rewrite(text).text == expected


def test_a_near_miss_is_reported_with_its_offset_in_the_input() -> None:
    text = "🚀 é: Shivhan ran post  rescule on min i-o"
    result = rewrite(text)
    assert result.replacements == (
        Replacement("Shivhan", "Siobhan", 5),
        Replacement("post  rescule", "PostgreSQL", 17),
        Replacement("min i-o", "MinIO", 34),
    )


# -- Left alone -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        # Real words, however close to a variant: "rabbit" / "rabbit mq", "graphs on it" /
        # "graph on it", "cube controls" / "cube control", "shaven" / "shivon".
        "a rabbit, the graphs on it, cube controls, a shaven head",
        # Windows and variants under five letters: "Neve" / "neev", "VRPC" / "gRPC".
        "Neve checked the VRPC latency",
        # A variant's letters and more: an inflected or compound form, another word.
        "two Grafanas and Kubernetesy",
        # Too far from any variant (tiny.en's "Grafana dashboard" and "Grafana alert").
        "Rabbit Mashboard, graph alert",
    ],
)
def test_what_merely_resembles_a_term_is_left_alone(text: str) -> None:
    assert rewrite(text) == Rewrite(text, ())


def test_variants_with_punctuation_or_another_script_have_no_near_misses() -> None:
    lexicon = [entry("Node.js", "node.js"), entry("Kubernetes", "кубернетес")]
    text = "on nodexjs and кубернетис"
    assert rewrite(text, *lexicon) == Rewrite(text, ())


def test_a_window_never_spans_punctuation_other_than_hyphens() -> None:
    text = "min, io and min.io"
    assert rewrite(text) == Rewrite(text, ())


@pytest.mark.parametrize("path", PLAIN_TEXTS, ids=lambda p: p.name)
def test_plain_speech_gets_no_replacement(path: Path) -> None:
    assert rewrite(path.read_text("utf-8")).replacements == ()


# -- Which match -------------------------------------------------------------------------


def test_exact_matches_come_first() -> None:
    kubeflow = entry("Kubeflow", "kubernetez")
    assert rewrite("we run kuber netes", kubeflow).text == "we run Kubeflow"
    exact = entry("Kubernetes", "kuber netes")
    assert rewrite("we run kuber netes", kubeflow, exact).text == "we run Kubernetes"


def test_the_closest_variant_wins_then_the_first_entry() -> None:
    # "grafanoz": 80 against "grafana", 88 against "grafanos".
    assert rewrite("Grafanoz", entry("Grafana"), entry("Grafanos")).text == "Grafanos"
    # "grafanaz" is as close to "grafanas" as to "grafanat".
    assert rewrite("Grafanaz", entry("Grafanas"), entry("Grafanat")).text == "Grafanas"
    assert rewrite("Grafanaz", entry("Grafanat"), entry("Grafanas")).text == "Grafanat"


def test_the_tightest_window_wins_and_windows_do_not_overlap() -> None:
    result = rewrite("on a couwer nattie cluster of shivhan")
    assert result.text == "on a Kubernetes cluster of Siobhan"
    assert [r.original for r in result.replacements] == ["couwer nattie", "shivhan"]


# -- Switches and languages ------------------------------------------------------------


def test_near_misses_can_be_turned_off() -> None:
    text = "ask Shivhan about the rabbit mq"
    result = Rewriter(TERMS, near_misses=False).apply(text)
    assert result.text == "ask Shivhan about the RabbitMQ"


def test_the_dictionary_is_the_texts_language_and_english() -> None:
    lexicon = entry("Ventanna", "ventanna")
    # "ventana" is no English word, but a Spanish one.
    assert rewrite("abrí la ventana", lexicon).text == "abrí la Ventanna"
    assert rewrite("abrí la ventana", lexicon, language="es").replacements == ()
    # English words stay words in Spanish text.
    assert rewrite("un rabbit", language="es-MX").replacements == ()


def test_a_language_without_a_dictionary_gets_exact_matches_only() -> None:
    result = rewrite("Shivhan och rabbit mq", language="sv")
    assert result.text == "Shivhan och RabbitMQ"
