"""What a ``POST /v1/audio/transcriptions`` form asks for: the upload (as the metadata
UploadAudio takes, so both APIs validate alike) and the shape of the answer.

OpenAI's fields: ``model`` (``whisper-1`` or any name that is not one of
:func:`model_ids`' means the default engine), ``language``, ``prompt`` and ``temperature``
(accepted, not used: Steno's engines take neither), ``response_format`` and
``timestamp_granularities[]``. Steno's: ``lexicon_id``, ``engine``, ``labels`` (a JSON object
of strings), ``retention`` (seconds, or an ISO 8601 duration such as ``PT1H``) and
``webhook_url`` (called when the job ends, as UploadMetadata's).

Fields that shape the job must come before the file, as the openai client sends them: the
upload starts at the file. The answer's fields may come after it, and so may a ``model``
that names the engine the job has anyway (``curl -F file=@a.ogg -F model=whisper-1`` sends
the file first).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import timedelta

from pydantic import TypeAdapter, ValidationError

from steno.common.partial_uploads import UploadRequest
from steno.common.settings import ENGINE_NAMES, LocalModel
from steno.gateway.http.form import Fields
from steno.gateway.uploads import InvalidUpload
from steno.v1 import transcription_service_pb2 as pb

FILE_FIELD = "file"
# The model OpenAI's examples name; any name Steno does not list means the default engine.
DEFAULT_MODEL = "whisper-1"
RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
GRANULARITIES = ("segment", "word")
JOB_FIELDS = ("language", "lexicon_id", "engine", "labels", "retention", "webhook_url")
_DURATION: TypeAdapter[timedelta] = TypeAdapter(timedelta)
_SECONDS = re.compile(r"\d+(\.\d+)?")


@dataclass(frozen=True, slots=True)
class AnswerOptions:
    response_format: str
    words: bool


def model_ids(engines: list[str], local_model: LocalModel) -> list[str]:
    """The models ``GET /v1/models`` lists: the default, and each engine the deployment
    runs, the local one with its model's name."""
    named = [f"local/{local_model.name}" if engine == "local" else engine for engine in engines]
    return [DEFAULT_MODEL, *named]


def upload_metadata(fields: Fields, filename: str) -> pb.UploadMetadata:
    """UploadAudio's metadata for the form's fields before the file."""
    metadata = pb.UploadMetadata(
        filename=filename,
        language=fields.get("language"),
        lexicon_id=fields.get("lexicon_id"),
        engine=fields.get("engine") or _engine_of_model(fields.get("model")),
        labels=_labels(fields.get("labels")),
        webhook_url=fields.get("webhook_url"),
    )
    if retention := fields.get("retention"):
        metadata.audio_retention.FromTimedelta(_retention(retention))
    return metadata


def refuse_late_job_fields(after: Fields, upload: UploadRequest) -> None:
    """InvalidUpload for a field that came after the file but would change ``upload``."""
    late_engine = _engine_of_model(after.get("model"))
    late = [name for name in JOB_FIELDS if name in after.names()]
    if late_engine and late_engine != upload.engine:
        late.insert(0, "model")
    if late:
        raise InvalidUpload(
            late[0], f"send {late[0]} before the file: the upload starts when the file does"
        )


def answer_options(before: Fields, after: Fields) -> AnswerOptions:
    """How to answer, from the fields on either side of the file; InvalidUpload for a value
    OpenAI's API would refuse as well."""
    values = Fields({**before.values, **after.values})
    response_format = values.get("response_format") or "json"
    if response_format not in RESPONSE_FORMATS:
        raise InvalidUpload(
            "response_format", f"response_format must be one of {', '.join(RESPONSE_FORMATS)}"
        )
    granularities = values.all("timestamp_granularities[]")
    for granularity in granularities:
        if granularity not in GRANULARITIES:
            raise InvalidUpload(
                "timestamp_granularities[]",
                f"timestamp_granularities[] takes {' and '.join(GRANULARITIES)}",
            )
    if temperature := values.get("temperature"):
        _temperature(temperature)
    return AnswerOptions(response_format, words="word" in granularities)


def _engine_of_model(model: str) -> str:
    """The engine a model id from ``/v1/models`` names (``local/tiny.en``, ``openai``); empty,
    the default engine, for any other name."""
    engine = model.partition("/")[0]
    return engine if engine in ENGINE_NAMES else ""


def _labels(value: str) -> dict[str, str]:
    if not value:
        return {}
    try:
        labels = json.loads(value)
    except ValueError:
        labels = None
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise InvalidUpload(
            "labels", 'labels must be a JSON object of strings, such as {"team": "support"}'
        )
    return labels


def _retention(value: str) -> timedelta:
    try:
        retention = (
            timedelta(seconds=float(value))
            if _SECONDS.fullmatch(value)
            else _DURATION.validate_python(value)
        )
    except (ValidationError, OverflowError):
        retention = timedelta(-1)
    if retention < timedelta(0):
        raise InvalidUpload(
            "retention", "retention is seconds (3600) or an ISO 8601 duration (PT1H, P7D)"
        )
    return retention


def _temperature(value: str) -> None:
    try:
        temperature = float(value)
    except ValueError:
        temperature = math.nan
    if not 0 <= temperature <= 1:
        raise InvalidUpload("temperature", "temperature must be a number from 0 to 1")
