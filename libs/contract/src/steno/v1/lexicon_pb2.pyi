import datetime

from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Lexicon(_message.Message):
    __slots__ = ("lexicon_id", "name", "language", "version", "entries", "create_time", "update_time")
    LEXICON_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    lexicon_id: str
    name: str
    language: str
    version: int
    entries: _containers.RepeatedCompositeFieldContainer[LexiconEntry]
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, lexicon_id: _Optional[str] = ..., name: _Optional[str] = ..., language: _Optional[str] = ..., version: _Optional[int] = ..., entries: _Optional[_Iterable[_Union[LexiconEntry, _Mapping]]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class LexiconEntry(_message.Message):
    __slots__ = ("phrase", "sounds_like")
    PHRASE_FIELD_NUMBER: _ClassVar[int]
    SOUNDS_LIKE_FIELD_NUMBER: _ClassVar[int]
    phrase: str
    sounds_like: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, phrase: _Optional[str] = ..., sounds_like: _Optional[_Iterable[str]] = ...) -> None: ...

class CreateLexiconRequest(_message.Message):
    __slots__ = ("lexicon",)
    LEXICON_FIELD_NUMBER: _ClassVar[int]
    lexicon: Lexicon
    def __init__(self, lexicon: _Optional[_Union[Lexicon, _Mapping]] = ...) -> None: ...

class CreateLexiconResponse(_message.Message):
    __slots__ = ("lexicon",)
    LEXICON_FIELD_NUMBER: _ClassVar[int]
    lexicon: Lexicon
    def __init__(self, lexicon: _Optional[_Union[Lexicon, _Mapping]] = ...) -> None: ...

class GetLexiconRequest(_message.Message):
    __slots__ = ("lexicon_id",)
    LEXICON_ID_FIELD_NUMBER: _ClassVar[int]
    lexicon_id: str
    def __init__(self, lexicon_id: _Optional[str] = ...) -> None: ...

class GetLexiconResponse(_message.Message):
    __slots__ = ("lexicon",)
    LEXICON_FIELD_NUMBER: _ClassVar[int]
    lexicon: Lexicon
    def __init__(self, lexicon: _Optional[_Union[Lexicon, _Mapping]] = ...) -> None: ...

class ListLexiconsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListLexiconsResponse(_message.Message):
    __slots__ = ("lexicons", "next_page_token")
    LEXICONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    lexicons: _containers.RepeatedCompositeFieldContainer[Lexicon]
    next_page_token: str
    def __init__(self, lexicons: _Optional[_Iterable[_Union[Lexicon, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateLexiconRequest(_message.Message):
    __slots__ = ("lexicon", "update_mask")
    LEXICON_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    lexicon: Lexicon
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, lexicon: _Optional[_Union[Lexicon, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateLexiconResponse(_message.Message):
    __slots__ = ("lexicon",)
    LEXICON_FIELD_NUMBER: _ClassVar[int]
    lexicon: Lexicon
    def __init__(self, lexicon: _Optional[_Union[Lexicon, _Mapping]] = ...) -> None: ...

class DeleteLexiconRequest(_message.Message):
    __slots__ = ("lexicon_id",)
    LEXICON_ID_FIELD_NUMBER: _ClassVar[int]
    lexicon_id: str
    def __init__(self, lexicon_id: _Optional[str] = ...) -> None: ...

class DeleteLexiconResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
