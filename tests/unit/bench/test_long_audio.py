"""The long-audio benchmark on a tiny input: its recording, and one A/B round of sequential
against batched faster-whisper with the bundled model, with the fields its figures need."""

from __future__ import annotations

from pathlib import Path

from bench.long_audio import measure, speech_file
from tests.support import SPEECH_TEXT


def test_the_recording_is_the_fixtures_in_turn_up_to_its_length(tmp_path: Path) -> None:
    speech = speech_file(tmp_path / "long.wav", 25)
    assert 15 < speech.seconds <= 25
    assert speech.said.startswith(SPEECH_TEXT + " This morning")
    assert speech_file(tmp_path / "short.wav", 1).said == SPEECH_TEXT, "at least one clip"


def test_one_round_times_both_sides_and_keeps_their_texts(tmp_path: Path) -> None:
    speech = speech_file(tmp_path / "long.wav", 10)
    rounds = measure(speech, "sequential", "batched", threads=0, rounds=1)
    assert len(rounds.ratios) == 1 and rounds.ratios[0] > 0
    assert set(rounds.rates) == {"baseline", "steno"}
    [(sequential, batched)] = rounds.texts
    assert "good morning" in sequential.lower() and "good morning" in batched.lower()
    assert rounds.wer_between()[0] <= 0.2
    assert rounds.wer_against(speech.said, 1)[0] <= 0.2
