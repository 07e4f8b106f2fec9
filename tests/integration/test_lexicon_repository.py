"""One contract for every LexiconRepository: Postgres, SQLite and the in-memory fake."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import pytest

from steno.common.db import SqlLexiconRepository, create_engine
from steno.common.lexicons import LexiconEntry, LexiconRepository
from steno.common.paging import PageCursor
from tests.fakes import T0, FakeLexiconRepository, make_lexicon

KUBERNETES = LexiconEntry("Kubernetes", ("cooper netties", "kuber netes"))
NIAMH = LexiconEntry("Niamh", ("neve",))


@pytest.fixture
async def lexicons(database_url: str | None) -> AsyncIterator[LexiconRepository]:
    if database_url is None:
        yield FakeLexiconRepository()
        return
    engine = create_engine(database_url)
    yield SqlLexiconRepository(engine)
    await engine.dispose()


async def test_a_lexicon_round_trips_every_field(lexicons: LexiconRepository) -> None:
    lexicon = make_lexicon(KUBERNETES, NIAMH, name="Плат форма", language="en-IE")
    await lexicons.add(lexicon)
    assert await lexicons.get(lexicon.lexicon_id, lexicon.tenant) == lexicon


async def test_a_tenant_sees_only_its_own(lexicons: LexiconRepository) -> None:
    lexicon = make_lexicon(KUBERNETES, tenant="acme")
    await lexicons.add(lexicon)
    assert await lexicons.get(lexicon.lexicon_id, "other") is None
    assert await lexicons.list_lexicons("other", limit=10, after=None) == []
    assert await lexicons.delete(lexicon.lexicon_id, "other") is False
    assert await lexicons.update(replace(lexicon, tenant="other"), expected_version=1) is False
    assert await lexicons.get(lexicon.lexicon_id, "acme") == lexicon


async def test_update_is_conditional_on_the_version(lexicons: LexiconRepository) -> None:
    lexicon = make_lexicon(KUBERNETES)
    await lexicons.add(lexicon)
    changed = replace(
        lexicon, entries=[NIAMH], version=2, name="renamed", update_time=T0 + timedelta(hours=1)
    )
    assert await lexicons.update(changed, expected_version=1) is True
    assert await lexicons.get(lexicon.lexicon_id, lexicon.tenant) == changed
    # A writer that read version 1 lost the race: nothing is written.
    stale = replace(lexicon, name="stale", version=2)
    assert await lexicons.update(stale, expected_version=1) is False
    assert await lexicons.get(lexicon.lexicon_id, lexicon.tenant) == changed


async def test_listing_is_newest_first_in_pages(lexicons: LexiconRepository) -> None:
    made = [make_lexicon(create_time=T0 + timedelta(minutes=i)) for i in range(5)]
    for lexicon in made:
        await lexicons.add(lexicon)
    first = await lexicons.list_lexicons("default", limit=3, after=None)
    cursor = PageCursor(first[-1].create_time, first[-1].lexicon_id)
    rest = await lexicons.list_lexicons("default", limit=3, after=cursor)
    assert [lex.lexicon_id for lex in first + rest] == [lex.lexicon_id for lex in reversed(made)]


async def test_delete_says_whether_it_existed(lexicons: LexiconRepository) -> None:
    lexicon = make_lexicon()
    await lexicons.add(lexicon)
    assert await lexicons.delete(lexicon.lexicon_id, lexicon.tenant) is True
    assert await lexicons.delete(lexicon.lexicon_id, lexicon.tenant) is False
    assert await lexicons.get(lexicon.lexicon_id, lexicon.tenant) is None
    assert await lexicons.get(uuid.uuid4(), lexicon.tenant) is None
