"""The multilingual base model, joined from its two packages, on Spanish, Russian and English
speech: it detects the language, writes each in its own script, and gets the words right."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jiwer
import pytest

from steno.common.jobs import Transcript
from steno.transcriber.engines.local import LocalWhisperEngine
from steno.transcriber.engines.models import installed_base_model, resolve_model
from steno.transcriber.engines.port import TranscriptionOptions
from tests.support import AUDIO


@pytest.fixture(scope="module")
def base_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if installed_base_model() is None:
        pytest.fail(
            "the multilingual base model is not installed: run `make sync`, which installs "
            "steno-transcriber's `multilingual` extra"
        )
    return Path(resolve_model("base", tmp_path_factory.mktemp("models")).location)


@pytest.fixture(scope="module")
async def heard(base_model_dir: Path) -> dict[str, Transcript]:
    """Every fixture as the engine hears it through STENO_WHISPER_MODEL=base, with the
    language left for it to detect; the model is loaded once for the module."""
    engine = LocalWhisperEngine(resolve_model("base", base_model_dir.parent))
    return {
        name: await engine.transcribe(AUDIO / f"{name}.wav", TranscriptionOptions())
        for name in ("speech_es", "speech_ru", "speech")
    }


def normalised(text: str) -> str:
    """Lower case, no punctuation, and Russian yo written as ye, as most Russian text does."""
    text = text.lower().replace("\N{CYRILLIC SMALL LETTER IO}", "\N{CYRILLIC SMALL LETTER IE}")
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())


def word_error_rate(name: str, transcript: Transcript) -> float:
    expected = (AUDIO / f"{name}.txt").read_text("utf-8")
    return float(jiwer.wer(normalised(expected), normalised(transcript.text)))


@pytest.mark.parametrize(
    ("name", "language", "max_wer"),
    [("speech_es", "es", 0.4), ("speech_ru", "ru", 0.25), ("speech", "en", 0.25)],
)
def test_speech_is_transcribed_in_its_language(
    heard: dict[str, Transcript], name: str, language: str, max_wer: float
) -> None:
    transcript = heard[name]
    print(
        f"{name}: {transcript.language} ({transcript.language_probability:.2f}), "
        f"WER {word_error_rate(name, transcript):.2f}: {transcript.text!r}"
    )
    assert transcript.language == language
    assert transcript.language_probability is not None
    assert transcript.language_probability > 0.5
    assert transcript.model == "base"
    assert word_error_rate(name, transcript) <= max_wer, transcript.text


def test_russian_is_written_in_cyrillic(heard: dict[str, Transcript]) -> None:
    letters = [c for c in heard["speech_ru"].text if c.isalpha()]
    cyrillic = [c for c in letters if "\u0400" <= c <= "\u04ff"]

    assert letters
    assert len(cyrillic) / len(letters) >= 0.95, heard["speech_ru"].text


def test_the_vocabulary_matches_the_converted_models(base_model_dir: Path) -> None:
    """The vocabulary derived from tokenizer.json is the one CTranslate2's converter wrote."""
    split = installed_base_model()
    assert split is not None
    converted = (split.files / "vocabulary.txt").read_text("utf-8").splitlines()

    derived = json.loads((base_model_dir / "vocabulary.json").read_text("utf-8"))

    assert len(derived) == 51865
    assert derived == converted
