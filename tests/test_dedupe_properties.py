"""Property tests: whatever a document holds, storing it is idempotent and loses nothing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from aggregator.process.normalize import normalize_items
from aggregator.store import Store
from aggregator.store.schema import item_sources, items
from aggregator.types import ParsedItem, SourceDefinition
from tests.builders import T0, make_parsed, save_batch

GUIDS = st.one_of(st.none(), st.sampled_from(["a", "b", " a ", "", "c"]))
LINKS = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "https://example.com/1",
            "https://EXAMPLE.com/1?utm_source=x",
            "https://example.com/1#top",
            "https://example.com/2",
            "javascript:alert(1)",
            "/relative",
        ]
    ),
)
TITLES = st.sampled_from(["One", "Two", "<b>One</b>", "", "Three & four"])

parsed_items = st.builds(
    lambda guid, link, title: make_parsed(guid=guid, link=link, title=title),
    GUIDS,
    LINKS,
    TITLES,
)


def _count(store: Store, table) -> int:
    with store.engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(table)).scalar_one()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    documents=st.lists(st.lists(parsed_items, max_size=8), min_size=1, max_size=3),
    data=st.data(),
)
def test_storing_documents_is_idempotent_and_keeps_every_entry(
    tmp_path_factory, documents: list[list[ParsedItem]], data: st.DataObject
) -> None:
    path: Path = tmp_path_factory.mktemp("dedupe") / "db.sqlite"
    store = Store.open(f"sqlite:///{path}")
    try:
        names = [f"s{i}" for i in range(len(documents))]
        store.sync_sources(
            [SourceDefinition(name=n, title=n, url=f"https://{n}.example/") for n in names], T0
        )
        batches = [
            normalize_items(doc, source_name=name, now=T0)
            for name, doc in zip(names, documents, strict=True)
        ]
        for name, batch in zip(names, batches, strict=True):
            assert len({i.entry_key for i in batch}) == len(batch)
            new = save_batch(store, name, batch)
            assert new == len(batch)
        credits, rows = _count(store, item_sources), _count(store, items)
        assert credits == sum(len(b) for b in batches)
        identities = {i.identity for b in batches for i in b}
        assert rows == len(identities)
        titles = _titles_by_link(store)
        # Polling every document again, reordered as feeds do, changes nothing.
        for name, doc in zip(names, documents, strict=True):
            reordered = data.draw(st.permutations(doc))
            batch = normalize_items(reordered, source_name=name, now=T0 + timedelta(hours=1))
            again = save_batch(store, name, batch, now=T0 + timedelta(hours=1))
            assert again == 0
        assert (_count(store, item_sources), _count(store, items)) == (credits, rows)
        single = _single_entry_links(batches)
        after = _titles_by_link(store)
        assert {k: v for k, v in after.items() if k in single} == {
            k: v for k, v in titles.items() if k in single
        }
        entries = store.feed_entries(series_slugs=None, limit=1000)
        assert len(entries) == rows
        links = [e.link for e in entries if e.link]
        assert len(links) == len(set(links))
    finally:
        store.close()


def _titles_by_link(store: Store) -> dict[str, str]:
    return {e.link: e.title for e in store.feed_entries(series_slugs=None, limit=1000) if e.link}


def _single_entry_links(batches) -> set[str]:
    """Links carried by exactly one entry in all documents: their text cannot change."""
    from collections import Counter

    counts = Counter(item.link for batch in batches for item in batch if item.link)
    return {link for link, count in counts.items() if count == 1}
