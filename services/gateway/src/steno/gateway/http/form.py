"""A ``multipart/form-data`` body read as it arrives: the small fields before the file, the
file's bytes as an async iterator straight into the upload pipeline, then the fields after
it. The body is never held whole; python-multipart's streaming parser cuts it up."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from steno.gateway.uploads import InvalidUpload

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

# A form field that is not the file is a word or a short JSON object, never a document.
MAX_FIELD_BYTES = 64 * 1024
MAX_FIELDS = 100


@dataclass(slots=True)
class _PartStart:
    name: str
    filename: str | None


@dataclass(slots=True)
class _PartData:
    data: bytes


@dataclass(slots=True)
class _PartEnd:
    pass


_Event = _PartStart | _PartData | _PartEnd


@dataclass
class Fields:
    """Form fields by name; a name sent more than once (``timestamp_granularities[]``) keeps
    every value, in order."""

    values: dict[str, list[str]] = field(default_factory=dict)

    def add(self, name: str, value: str) -> None:
        if sum(map(len, self.values.values())) >= MAX_FIELDS:
            raise InvalidUpload(name, f"a form has at most {MAX_FIELDS} fields")
        self.values.setdefault(name, []).append(value)

    def get(self, name: str) -> str:
        """The last value sent for ``name``, or empty."""
        return self.values.get(name, [""])[-1]

    def all(self, name: str) -> list[str]:
        return self.values.get(name, [])

    def names(self) -> set[str]:
        return set(self.values)


class StreamingForm:
    """One request's form, read in order: :meth:`fields_before_file`, then
    :meth:`file_chunks`, whose end reads the fields after the file into :attr:`after`."""

    def __init__(self, content_type: str, body: AsyncIterator[bytes], file_field: str) -> None:
        kind, options = parse_options_header(content_type)
        boundary = options.get(b"boundary")
        if kind != b"multipart/form-data" or not boundary:
            raise InvalidUpload(
                file_field, "send the request as multipart/form-data (curl -F file=@audio.wav)"
            )
        self._file_field = file_field
        self._pending: deque[_Event] = deque()
        self._headers: dict[bytes, bytes] = {}
        self._header = [b"", b""]
        self._parser = MultipartParser(boundary, callbacks=self._callbacks())
        self._events = self._parse(body)
        self.filename = ""
        self.after = Fields()

    async def fields_before_file(self) -> Fields:
        """The fields up to the file part's headers; InvalidUpload if the form has no file."""
        fields = Fields()
        async for event in self._events:
            if isinstance(event, _PartStart):
                if event.name == self._file_field:
                    self.filename = event.filename or ""
                    return fields
                fields.add(event.name, await self._value(event.name))
        raise InvalidUpload(self._file_field, f"the form has no {self._file_field!r} part")

    async def file_chunks(self) -> AsyncIterator[bytes]:
        """The file's bytes as they arrive. Once the file ends, the rest of the form (a few
        fields at most) is read before the iterator ends, so the upload is recorded only
        from a whole, well-formed request."""
        async for event in self._events:
            if isinstance(event, _PartEnd):
                break
            if isinstance(event, _PartData) and event.data:
                yield event.data
        async for event in self._events:
            if isinstance(event, _PartStart):
                if event.name == self._file_field:
                    raise InvalidUpload(self._file_field, "send one file per request")
                self.after.add(event.name, await self._value(event.name))

    async def _value(self, name: str) -> str:
        """The rest of a field's part, as text."""
        value = bytearray()
        async for event in self._events:
            if isinstance(event, _PartEnd):
                break
            if isinstance(event, _PartData):
                value += event.data
                if len(value) > MAX_FIELD_BYTES:
                    raise InvalidUpload(name, f"{name} is longer than {MAX_FIELD_BYTES} bytes")
        try:
            return value.decode()
        except UnicodeDecodeError:
            raise InvalidUpload(name, f"{name} is not UTF-8 text") from None

    async def _parse(self, body: AsyncIterator[bytes]) -> AsyncIterator[_Event]:
        try:
            async for chunk in body:
                self._parser.write(chunk)
                while self._pending:
                    yield self._pending.popleft()
            self._parser.finalize()
        except MultipartParseError as exc:
            message = f"the multipart body is malformed: {exc}"
            raise InvalidUpload(self._file_field, message) from None
        while self._pending:
            yield self._pending.popleft()

    def _callbacks(self) -> MultipartCallbacks:
        def header_field(data: bytes, start: int, end: int) -> None:
            self._header[0] += data[start:end]

        def header_value(data: bytes, start: int, end: int) -> None:
            self._header[1] += data[start:end]

        def header_end() -> None:
            self._headers[self._header[0].lower()] = self._header[1]
            self._header = [b"", b""]

        def headers_finished() -> None:
            _, options = parse_options_header(self._headers.get(b"content-disposition"))
            filename = options.get(b"filename")
            self._pending.append(
                _PartStart(
                    options.get(b"name", b"").decode("utf-8", "replace"),
                    filename.decode("utf-8", "replace") if filename is not None else None,
                )
            )
            self._headers = {}

        def part_data(data: bytes, start: int, end: int) -> None:
            self._pending.append(_PartData(bytes(data[start:end])))

        def part_end() -> None:
            self._pending.append(_PartEnd())

        return {
            "on_header_field": header_field,
            "on_header_value": header_value,
            "on_header_end": header_end,
            "on_headers_finished": headers_finished,
            "on_part_data": part_data,
            "on_part_end": part_end,
        }
