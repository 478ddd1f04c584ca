"""Near-duplicate text: the decision on real wire copy, the sketch, the index."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.process.document import process_document
from aggregator.process.duplicates import (
    MAX_WORDS,
    MIN_WORDS,
    SKETCH_SIZE,
    DuplicateIndex,
    DuplicateRules,
    fingerprint,
    hashes,
    is_duplicate,
    resemblance,
)

DATA = Path(__file__).parent / "data" / "duplicates"
RULES = DuplicateRules()
T0 = datetime(2026, 2, 18, 2, 0, tzinfo=UTC)


def _items() -> dict[tuple[str, str], str]:
    """(feed file, first words of the title) -> title and body, as normalize sees them."""
    rows = json.loads((DATA / "near_duplicates.json").read_text(encoding="utf-8"))
    return {(r["file"], r["title"][:20]): f"{r['title']}\n{r['body']}" for r in rows}


def _sketch(text: str) -> bytes:
    title, _, body = text.partition("\n")
    return fingerprint(title, body)


def _jaccard_of_whole_texts(a: str, b: str) -> float:
    """Exact resemblance of two whole texts' word 4-gram sets (no sketch, no lead)."""

    def shingles(text: str) -> set[tuple[str, ...]]:
        words = re.findall(r"\w+", text.casefold())
        return {tuple(words[i : i + 4]) for i in range(len(words) - 3)}

    mine, theirs = shingles(a), shingles(b)
    return len(mine & theirs) / len(mine | theirs)


def test_wire_copy_two_outlets_carry_under_their_own_links_is_a_duplicate() -> None:
    items = _items()
    japan = _sketch(items["japantoday-world.xml", "Australia won't repa"])
    npr = _sketch(items["npr-world.xml", "Australia won't repa"])
    assert japan and npr
    assert is_duplicate(japan, npr, RULES)
    assert is_duplicate(npr, japan, RULES)


def test_other_words_about_the_same_event_are_not_a_duplicate() -> None:
    items = _items()
    abc = _sketch(items["abcnews-international.xml", "Australia won't repa"])
    npr = _sketch(items["npr-world.xml", "Australia won't repa"])
    assert resemblance(abc, npr) < 0.5
    assert not is_duplicate(abc, npr, RULES)


def test_two_articles_sharing_paragraphs_of_background_are_not_duplicates() -> None:
    items = _items()
    europe = items["time-world.xml", "Europe Promises Unit"]
    tariffs = items["time-world.xml", "Trump Announces Tari"]
    assert resemblance(_sketch(europe), _sketch(tariffs)) < 0.3
    assert not is_duplicate(_sketch(europe), _sketch(tariffs), RULES)
    # Past their leads, the two share whole paragraphs of background: their whole texts
    # resemble well above chance; the sketch covers the lead, where they differ.
    assert _jaccard_of_whole_texts(europe, tariffs) > 0.3


def test_a_text_too_short_to_tell_apart_has_no_fingerprint() -> None:
    words = " ".join(f"w{n}" for n in range(MIN_WORDS - 3))
    assert fingerprint("Short title", words) == b""
    assert fingerprint("A title of five words", words) != b""
    assert resemblance(b"", b"") == 0.0


def test_an_identical_text_resembles_fully_and_the_sketch_is_its_smallest_hashes() -> None:
    body = " ".join(f"word{n}" for n in range(200))
    sketch = fingerprint("Title", body)
    assert resemblance(sketch, fingerprint("Title", body)) == 1.0
    smallest = hashes(sketch)
    assert len(sketch) == 4 * SKETCH_SIZE and len(smallest) == SKETCH_SIZE
    assert list(smallest) == sorted(set(smallest))
    assert hashes(sketch, 3) == smallest[:3]


def test_only_the_lead_counts() -> None:
    lead = " ".join(f"word{n}" for n in range(MAX_WORDS))
    assert fingerprint("", lead + " tail one") == fingerprint("", lead + " another ending")
    assert fingerprint("", "new start " + lead) != fingerprint("", lead)


def test_the_index_finds_the_earliest_original_inside_the_window() -> None:
    items = _items()
    japan = _sketch(items["japantoday-world.xml", "Australia won't repa"])
    npr = _sketch(items["npr-world.xml", "Australia won't repa"])
    index = DuplicateIndex(RULES)
    index.add(1, japan, T0, story=10)
    index.add(2, japan, T0 + timedelta(minutes=5), story=11)
    found = index.original_of(npr, T0 + timedelta(hours=1))
    assert found is not None and (found.item, found.story) == (1, 10)
    assert index.original_of(npr, T0 + RULES.window + timedelta(hours=1)) is None
    index.prune(T0 + RULES.window + timedelta(hours=1))
    assert len(index) == 0


def test_an_item_dated_in_the_future_does_not_keep_older_ones_in_the_index() -> None:
    items = _items()
    japan = _sketch(items["japantoday-world.xml", "Australia won't repa"])
    npr = _sketch(items["npr-world.xml", "Australia won't repa"])
    index = DuplicateIndex(RULES)
    index.add(1, npr, T0 + timedelta(days=30), story=10)  # a feed that dates ahead
    index.add(2, japan, T0, story=11)
    index.prune(T0 + RULES.window + timedelta(hours=1))
    assert len(index) == 1
    found = index.original_of(japan, T0 + timedelta(days=30))
    assert found is not None and found.item == 1


def test_an_original_left_alone_on_its_hashes_is_still_found_after_the_others_go() -> None:
    """Hashes two originals share, then one: found by each while it is there, by the
    one left after the other is pruned, and the index empty once both are gone."""
    items = _items()
    japan = _sketch(items["japantoday-world.xml", "Australia won't repa"])
    npr = _sketch(items["npr-world.xml", "Australia won't repa"])
    other = _sketch(items["npr-world.xml", "Australia won't repa"].upper() + " and more")
    index = DuplicateIndex(RULES)
    index.add(1, japan, T0, story=10)
    index.add(2, npr, T0 + timedelta(hours=30), story=11)
    index.add(3, other, T0 + timedelta(hours=31), story=12)
    later = T0 + RULES.window + timedelta(hours=2)  # item 1 is past the window, 2 is not
    index.prune(later)
    assert len(index) == 2
    found = index.original_of(japan, later)
    assert found is not None and (found.item, found.story) == (2, 11)
    index.prune(later + timedelta(hours=40))
    assert len(index) == 0 and index.state()[1] == {}  # no posting outlives its originals


def test_a_saved_duplicate_index_is_taken_up_whichever_way_its_postings_were_kept() -> None:
    """A snapshot from before postings of one original were kept as plain ids holds
    lists of one: it is read, and finds as the index that saved it did."""
    items = _items()
    japan = _sketch(items["japantoday-world.xml", "Australia won't repa"])
    npr = _sketch(items["npr-world.xml", "Australia won't repa"])
    index = DuplicateIndex(RULES)
    index.add(1, japan, T0, story=10)
    originals, postings = index.state()
    as_lists = {
        key: found if isinstance(found, list) else [found] for key, found in postings.items()
    }
    for saved in (postings, as_lists):
        taken_up = DuplicateIndex.from_state(RULES, (originals, saved))
        assert taken_up.state() == index.state()
        found = taken_up.original_of(npr, T0 + timedelta(hours=1))
        assert found is not None and found.item == 1
    for wrong in ([], True, "12", (4,), ["7"], [1, 2.5]):  # refused, not converted
        broken = dict.fromkeys(postings, wrong)
        with pytest.raises((TypeError, ValueError)):
            DuplicateIndex.from_state(RULES, (originals, broken))


def test_a_taken_up_index_forgets_its_originals_as_the_saved_one_would() -> None:
    """The saved state leaves out the heap by date: the index that takes it up makes
    it again, and prunes the same originals at the same moments. Added out of date
    order, as feeds list them, so that the originals' order is no heap."""
    index = DuplicateIndex(RULES)
    for n in range(40):
        body = " ".join(f"word{n}x{k}" for k in range(40))
        index.add(n, fingerprint(f"Story {n}", body), T0 + timedelta(hours=(n * 17) % 40), n)
    taken_up = DuplicateIndex.from_state(RULES, index.state())
    for hours in range(0, 30, 3):
        now = T0 + RULES.window + timedelta(hours=hours)
        index.prune(now)
        taken_up.prune(now)
        assert taken_up.state() == index.state()
    assert 0 < len(index) < 40


def test_a_saved_original_whose_sketch_is_not_bytes_is_refused() -> None:
    index = DuplicateIndex(RULES)
    index.add(1, fingerprint("Rates", "The bank raised its main rate. " * 8), T0, story=1)
    (original, *_), postings = index.state()
    for wrong in ("a sketch", 256, [1, 2]):
        with pytest.raises(TypeError):
            DuplicateIndex.from_state(RULES, ([(*original[:3], wrong)], postings))


def test_normalized_items_carry_the_fingerprint_of_their_text() -> None:
    body = " ".join(f"word{n}" for n in range(60))
    feed = (
        "<rss version='2.0'><channel><title>t</title><item><title>A title</title>"
        f"<link>https://a.example/1</link><description>&lt;p&gt;{body}&lt;/p&gt;"
        "</description></item><item><title>Tiny</title><link>https://a.example/2</link>"
        "<description>few words</description></item></channel></rss>"
    ).encode()
    document = process_document(
        feed,
        content_type=None,
        url="https://a.example/f",
        source_name="a",
        now=T0,
        rules=(),
        code_key=b"",
    )
    long, short = document.items
    assert long.fingerprint == fingerprint("A title", body)
    assert short.fingerprint == b""
