"""The local engine's stop between calls into CTranslate2: a stopped transcription's thread
makes no further call, so it ends when the call under way returns."""

from __future__ import annotations

from typing import Any

import pytest

from steno.transcriber.engines.local import Interruptible, Stopped


class RecordingModel:
    """Stands in for CTranslate2's Whisper model: notes each call it gets."""

    is_multilingual = False

    def __init__(self) -> None:
        self.calls: list[str] = []

    def encode(self, features: Any) -> str:
        self.calls.append("encode")
        return f"encoded {features}"

    def generate(self, encoded: Any, prompts: Any, **options: Any) -> str:
        self.calls.append("generate")
        return f"generated from {encoded} with {options}"

    def detect_language(self, encoded: Any) -> str:
        self.calls.append("detect_language")
        return "en"

    def align(self, *args: Any) -> str:
        self.calls.append("align")
        return "aligned"


def test_calls_and_attributes_pass_through_until_stopped() -> None:
    model = RecordingModel()
    calls = Interruptible(model)

    assert calls.generate(calls.encode("mel"), [[1]], beam_size=5) == (
        "generated from encoded mel with {'beam_size': 5}"
    )
    assert calls.detect_language("x") == "en"
    assert calls.is_multilingual is False
    assert model.calls == ["encode", "generate", "detect_language"]


@pytest.mark.parametrize("call", sorted(Interruptible.CALLS))
def test_once_stopped_no_call_reaches_the_model(call: str) -> None:
    model = RecordingModel()
    calls = Interruptible(model)
    calls.stop.set()

    with pytest.raises(Stopped, match=f"before the model's next {call}"):
        getattr(calls, call)("features", [[1]])
    assert model.calls == []
    assert calls.is_multilingual is False, "attributes still read"


def test_a_call_fetched_before_the_stop_checks_it_when_made() -> None:
    """faster-whisper may hold on to a bound method; the stop still applies to it."""
    model = RecordingModel()
    calls = Interruptible(model)
    generate = calls.generate
    calls.stop.set()

    with pytest.raises(Stopped):
        generate("encoded", [[1]])
    assert model.calls == []
