"""``steno.v1.LexiconService``: a tenant's lexicons, validated here and stored whole."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from steno.common.clock import Clock, utc_now
from steno.common.lexicons import Lexicon, LexiconEntry, LexiconRepository, claimed_twice
from steno.common.messages import lexicon_to_proto
from steno.common.paging import PageCursor
from steno.gateway.language_tags import is_language_tag
from steno.gateway.page_tokens import decode_page_token, encode_page_token
from steno.gateway.refusals import LexiconChanged, LexiconNotFound
from steno.gateway.request_fields import InvalidField, page_size, parse_id
from steno.gateway.rpc_errors import Context, rpc
from steno.gateway.tenancy import tenant_of
from steno.v1 import lexicon_pb2 as pb
from steno.v1 import lexicon_pb2_grpc

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
MAX_NAME = 200
MAX_ENTRIES = 5000
MAX_VARIANTS = 50
MAX_PHRASE = 200
MUTABLE_FIELDS = ("name", "language", "entries")


class LexiconApi(lexicon_pb2_grpc.LexiconServiceServicer):
    def __init__(self, lexicons: LexiconRepository, *, clock: Clock = utc_now) -> None:
        self._lexicons = lexicons
        self._clock = clock

    @rpc()
    async def CreateLexicon(
        self, request: pb.CreateLexiconRequest, context: Context
    ) -> pb.CreateLexiconResponse:
        name, language, entries = _validated(request.lexicon, MUTABLE_FIELDS)
        now = self._clock()
        lexicon = Lexicon(
            lexicon_id=uuid.uuid4(),
            tenant=tenant_of(context),
            name=name,
            language=language,
            entries=entries,
            create_time=now,
            update_time=now,
        )
        await self._lexicons.add(lexicon)
        return pb.CreateLexiconResponse(lexicon=lexicon_to_proto(lexicon))

    @rpc()
    async def GetLexicon(
        self, request: pb.GetLexiconRequest, context: Context
    ) -> pb.GetLexiconResponse:
        lexicon = await self._lexicon(request.lexicon_id, context)
        return pb.GetLexiconResponse(lexicon=lexicon_to_proto(lexicon))

    @rpc()
    async def ListLexicons(
        self, request: pb.ListLexiconsRequest, context: Context
    ) -> pb.ListLexiconsResponse:
        size = page_size(request.page_size, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
        tenant = tenant_of(context)
        listing = f"lexicons/{tenant}"
        cursor = decode_page_token(request.page_token, listing)
        # One extra row tells whether another page follows.
        found = await self._lexicons.list_lexicons(tenant, limit=size + 1, after=cursor)
        page = found[:size]
        next_token = ""
        if len(found) > size:
            next_token = encode_page_token(
                PageCursor(page[-1].create_time, page[-1].lexicon_id), listing
            )
        return pb.ListLexiconsResponse(
            lexicons=[lexicon_to_proto(lexicon) for lexicon in page], next_page_token=next_token
        )

    @rpc()
    async def UpdateLexicon(
        self, request: pb.UpdateLexiconRequest, context: Context
    ) -> pb.UpdateLexiconResponse:
        paths = tuple(request.update_mask.paths) or MUTABLE_FIELDS
        unknown = sorted(set(paths) - set(MUTABLE_FIELDS))
        if unknown:
            raise InvalidField(
                "update_mask",
                f"cannot update {', '.join(unknown)}; updatable: {', '.join(MUTABLE_FIELDS)}",
            )
        name, language, entries = _validated(request.lexicon, paths)
        if request.lexicon.version < 0:
            raise InvalidField("lexicon.version", "version is the one you read, or 0 for any")
        lexicon = await self._lexicon(request.lexicon.lexicon_id, context, field="lexicon")
        expected = request.lexicon.version or lexicon.version
        if expected != lexicon.version:
            raise LexiconChanged(
                lexicon.lexicon_id,
                f"lexicon {lexicon.lexicon_id} is at version {lexicon.version}, not the "
                f"{expected} you sent; get it again and reapply your change",
            )
        if "name" in paths:
            lexicon.name = name
        if "language" in paths:
            lexicon.language = language
        if "entries" in paths:
            lexicon.entries = entries
        lexicon.version = expected + 1
        lexicon.update_time = self._clock()
        if not await self._lexicons.update(lexicon, expected_version=expected):
            # Someone else updated (or deleted) it between our read and our write.
            raise LexiconChanged(
                lexicon.lexicon_id,
                f"lexicon {lexicon.lexicon_id} changed while it was being updated; "
                "get it again and reapply your change",
            )
        return pb.UpdateLexiconResponse(lexicon=lexicon_to_proto(lexicon))

    @rpc()
    async def DeleteLexicon(
        self, request: pb.DeleteLexiconRequest, context: Context
    ) -> pb.DeleteLexiconResponse:
        lexicon_id = parse_id("lexicon_id", request.lexicon_id)
        if not await self._lexicons.delete(lexicon_id, tenant_of(context)):
            raise LexiconNotFound(lexicon_id)
        return pb.DeleteLexiconResponse()

    async def _lexicon(self, lexicon_id: str, context: Context, *, field: str = "") -> Lexicon:
        """The caller's lexicon, or NOT_FOUND."""
        name = f"{field}.lexicon_id" if field else "lexicon_id"
        parsed = parse_id(name, lexicon_id)
        lexicon = await self._lexicons.get(parsed, tenant_of(context))
        if lexicon is None:
            raise LexiconNotFound(parsed)
        return lexicon


def _validated(message: pb.Lexicon, fields: Sequence[str]) -> tuple[str, str, list[LexiconEntry]]:
    """The request's name, language and entries, checked where ``fields`` says they are
    used; InvalidField names the first field that is wrong."""
    name = message.name.strip()
    if "name" in fields and not 0 < len(name) <= MAX_NAME:
        raise InvalidField("lexicon.name", f"name is required, at most {MAX_NAME} characters")
    if "language" in fields and message.language and not is_language_tag(message.language):
        raise InvalidField(
            "lexicon.language", "language must be a BCP-47 code such as en or pt-BR, or empty"
        )
    entries: list[LexiconEntry] = []
    if "entries" in fields:
        if len(message.entries) > MAX_ENTRIES:
            raise InvalidField("lexicon.entries", f"at most {MAX_ENTRIES} entries")
        seen: dict[str, int] = {}
        for index, entry in enumerate(message.entries):
            parsed = _entry(entry, f"lexicon.entries[{index}]")
            first = seen.setdefault(parsed.phrase.casefold(), index)
            if first != index:
                # Two entries for one phrase would make its replacement ambiguous.
                raise InvalidField(
                    f"lexicon.entries[{index}].phrase",
                    f"phrase {parsed.phrase!r} is already entry {first}; "
                    "merge their sounds_like lists",
                )
            entries.append(parsed)
        ambiguous = claimed_twice(entries)
        if ambiguous is not None:
            variant, owner, claimant = ambiguous
            raise InvalidField(
                "lexicon.entries",
                f"{variant!r} is listed under both {owner!r} and {claimant!r}: keep it under "
                "the phrase it stands for",
            )
    return name, message.language, entries


def _entry(entry: pb.LexiconEntry, field: str) -> LexiconEntry:
    phrase = entry.phrase.strip()
    if not 0 < len(phrase) <= MAX_PHRASE:
        raise InvalidField(
            f"{field}.phrase", f"phrase is required, at most {MAX_PHRASE} characters"
        )
    if len(entry.sounds_like) > MAX_VARIANTS:
        raise InvalidField(f"{field}.sounds_like", f"at most {MAX_VARIANTS} variants")
    variants = []
    for index, variant in enumerate(entry.sounds_like):
        variant = variant.strip()
        if not 0 < len(variant) <= MAX_PHRASE:
            raise InvalidField(
                f"{field}.sounds_like[{index}]",
                f"each variant is non-empty, at most {MAX_PHRASE} characters",
            )
        variants.append(variant)
    return LexiconEntry(phrase, tuple(variants))
