"""Model resolution: which directory or name faster-whisper gets for STENO_WHISPER_MODEL, and
how the split base model is joined once, atomically, into the cache directory."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import pytest

from steno.transcriber.engines import models
from steno.transcriber.engines.models import (
    BUNDLED_MODEL,
    TIMESTAMP_TOKENS,
    ModelUnavailable,
    ResolvedModel,
    SplitModel,
    assemble,
    bundled_model_path,
    embedding_rows,
    installed_base_model,
    resolve_model,
)

TOKENS = ["a", "b", "<|endoftext|>", "<|notimestamps|>"]


def ct2_model(rows: int, *, version: int = 6) -> bytes:
    """A CTranslate2 model.bin holding only a decoder embedding of ``rows`` one-byte rows."""

    def name(text: str) -> bytes:
        return struct.pack("<H", len(text) + 1) + text.encode() + b"\0"

    variable = name("decoder/embeddings/weight") + struct.pack("<BIIBI", 2, rows, 1, 0, rows)
    header = struct.pack("<I", version) + name("WhisperSpec") + struct.pack("<II", 3, 1)
    return header + variable + bytes(rows)


def fake_split(root: Path, *, rows: int = len(TOKENS) + TIMESTAMP_TOKENS) -> SplitModel:
    """A tiny split model laid out like the two packages' data directories."""
    files, rest = root / "part1", root / "part2"
    files.mkdir(parents=True)
    rest.mkdir(parents=True)
    tokenizer = {
        "model": {"vocab": {"a": 0, "b": 1, "<|endoftext|>": 2}},
        "added_tokens": [
            {"id": 2, "content": "<|endoftext|>"},
            {"id": 3, "content": "<|notimestamps|>"},
        ],
    }
    (files / "tokenizer.json").write_text(json.dumps(tokenizer))
    (files / "config.json").write_text('{"lang_ids": []}')
    model = ct2_model(rows)
    (files / "model.bin.part1").write_bytes(model[:40])
    (rest / "model.bin.part2").write_bytes(model[40:])
    return SplitModel("base", "1.0.0", files, rest)


@pytest.fixture
def split(tmp_path: Path) -> SplitModel:
    return fake_split(tmp_path / "packages")


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "models"


@pytest.mark.parametrize("reference", [None, "", BUNDLED_MODEL])
def test_no_model_or_tiny_en_is_the_bundled_model(reference: str | None, cache: Path) -> None:
    resolved = resolve_model(reference, cache)

    assert resolved == ResolvedModel(str(bundled_model_path()), "tiny.en")
    assert (Path(resolved.location) / "model.bin").is_file()
    assert not cache.exists()


def test_a_directory_is_loaded_from_where_it_is(tmp_path: Path, cache: Path) -> None:
    directory = tmp_path / "whisper-small-de"
    directory.mkdir()

    assert resolve_model(str(directory), cache) == ResolvedModel(str(directory), "whisper-small-de")


@pytest.mark.parametrize("reference", ["large-v3", "Systran/faster-whisper-small"])
def test_other_names_are_left_to_faster_whisper(reference: str, cache: Path) -> None:
    assert resolve_model(reference, cache) == ResolvedModel(reference, reference)


def test_base_is_assembled_from_its_packages(
    split: SplitModel, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(models, "installed_base_model", lambda: split)

    resolved = resolve_model("base", cache)

    target = cache / "whisper-base-1.0.0"
    assert resolved == ResolvedModel(str(target), "base")
    parts = b"".join(part.read_bytes() for part in split.parts)
    assert (target / "model.bin").read_bytes() == parts
    assert (target / "config.json").read_text() == '{"lang_ids": []}'
    assert (target / "tokenizer.json").is_file()
    vocabulary = json.loads((target / "vocabulary.json").read_text())
    assert vocabulary[: len(TOKENS)] == TOKENS
    assert vocabulary[len(TOKENS)] == "<|0.00|>"
    assert vocabulary[len(TOKENS) + 1] == "<|0.02|>"
    assert vocabulary[-1] == "<|30.00|>"
    assert len(vocabulary) == len(TOKENS) + TIMESTAMP_TOKENS
    assert sorted(p.name for p in cache.iterdir()) == [target.name]


def test_base_without_its_packages_is_left_to_faster_whisper(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(models, "installed_base_model", lambda: None)

    assert resolve_model("base", cache) == ResolvedModel("base", "base")


def test_an_assembled_model_is_reused(split: SplitModel, cache: Path) -> None:
    first = assemble(split, cache)
    written = (first / "model.bin").stat()

    second = assemble(split, cache)

    assert second == first
    again = (second / "model.bin").stat()
    assert (again.st_ino, again.st_mtime_ns) == (written.st_ino, written.st_mtime_ns)
    assert [p.name for p in cache.iterdir()] == [first.name]


def test_a_failed_assembly_leaves_no_half_model(
    split: SplitModel, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(tokenizer: object) -> list[str]:
        raise OSError("disk full")

    monkeypatch.setattr(models, "whisper_vocabulary", fail)
    with pytest.raises(OSError, match="disk full"):
        assemble(split, cache)
    assert list(cache.iterdir()) == []

    monkeypatch.undo()
    assert (assemble(split, cache) / "vocabulary.json").is_file()


def test_a_vocabulary_the_model_does_not_expect_is_refused(tmp_path: Path, cache: Path) -> None:
    split = fake_split(tmp_path / "packages", rows=len(TOKENS) + TIMESTAMP_TOKENS + 1)

    with pytest.raises(ModelUnavailable, match="1505 tokens but its decoder expects 1506"):
        assemble(split, cache)
    assert list(cache.iterdir()) == []


def test_a_process_that_finished_first_wins_the_race(
    split: SplitModel, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build = models._build

    def build_while_another_process_finishes(split: SplitModel, into: Path) -> None:
        monkeypatch.setattr(models, "_build", build)
        assemble(split, cache)  # the other process, done before this one renames
        build(split, into)

    monkeypatch.setattr(models, "_build", build_while_another_process_finishes)

    target = assemble(split, cache)

    assert (target / "vocabulary.json").is_file()
    assert [p.name for p in cache.iterdir()] == [target.name]


def test_a_directory_left_incomplete_is_rebuilt(split: SplitModel, cache: Path) -> None:
    target = cache / "whisper-base-1.0.0"
    target.mkdir(parents=True)
    (target / "model.bin").write_bytes(b"truncated")

    assert assemble(split, cache) == target
    assert (target / "model.bin").stat().st_size == split.size
    assert [p.name for p in cache.iterdir()] == [target.name]


def test_embedding_rows_are_read_from_the_header() -> None:
    assert embedding_rows(io.BytesIO(ct2_model(7))) == 7
    with pytest.raises(ModelUnavailable, match="format version 5"):
        embedding_rows(io.BytesIO(ct2_model(7, version=5)))


def test_one_missing_part_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        models, "_package_data", lambda name: Path("/x") if name.endswith("1") else None
    )

    with pytest.raises(ModelUnavailable, match=r"pip install 'steno-transcriber\[multilingual\]'"):
        installed_base_model()


def test_the_base_model_packages_are_installed() -> None:
    split = installed_base_model()

    assert split is not None, (
        "the multilingual base model is not installed: run `make sync`, which installs "
        "steno-transcriber's `multilingual` extra"
    )
    assert all(part.is_file() for part in split.parts)
    assert (split.files / "tokenizer.json").is_file()
