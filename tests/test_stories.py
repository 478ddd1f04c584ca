"""Story assignment: the pure pieces, the index, the scores, and quality on labelled data."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.grouping_eval import EvaluationInputError, assign_stories, read_labelled, score
from aggregator.process import stories
from aggregator.process.stories import (
    Candidate,
    Decision,
    GroupingRules,
    StoryIndex,
    decide,
    strip_outlet_name,
    terms,
)
from tests.conftest import corpus_dir

DATA = Path(__file__).parent / "data" / "stories"
DEV = DATA / "uci-dev-stories.csv"
T0 = datetime(2026, 2, 18, 8, 0, tzinfo=UTC)


def test_terms_drop_stopwords_and_fold_plurals_and_possessives() -> None:
    found = terms("Fed's officials hint the tapering continues")
    assert set(found) == {"?fed", "official", "hint", "taper", "continue"}


def test_dates_are_no_terms_but_long_numbers_are() -> None:
    found = terms("Magazine solutions - February 27, 2026, Tuesday, flight 5342")
    assert set(found) == {"?magazine", "solution", "flight", "5342"}


def test_remembered_words_stay_bounded_and_give_the_same_terms() -> None:
    stories._term_of.cache_clear()
    first = terms("Fed's officials hint the tapering continues in Geneva")
    assert terms("Fed's officials hint the tapering continues in Geneva") == first
    remembered = stories._term_of.cache_info()
    assert remembered.hits > 0
    assert remembered.maxsize is not None and remembered.currsize <= remembered.maxsize


def test_capitalised_words_after_the_first_are_marked() -> None:
    assert set(terms("Talks in Geneva resume")) == {"?talk", "^geneva", "resume"}


def test_a_first_word_is_a_name_when_the_stream_capitalises_it_mid_headline() -> None:
    index = StoryIndex(GroupingRules())
    for n in range(3):
        index.assign(terms(f"Talks about Iran resume in round {n + 1000}"), T0)
    # "Iran", capitalised mid-headline before, is a name; "Talks" never was. As a name,
    # Iran is the subject of the talks' story, and enough to join it.
    talks = index.place(terms("Talks collapse over the new offer"), T0)
    iran = index.place(terms("Iran rejects the new offer"), T0)
    # ... guessed from the stream, not marked by the headline itself
    assert index._names_of(terms("Iran rejects the new offer")) == ({"iran"}, {"iran"})
    assert index._names_of(terms("Talks collapse over the new offer")) == (set(), set())
    assert index._names_of(terms("Deal with Iran rejected")) == ({"iran"}, set())
    # ... and a name the headline marks is not guessed, where else it stands
    assert index._names_of(terms("Iran talks: Iran rejects offer")) == ({"iran"}, set())
    assert iran.story != talks.story and not iran.created


def test_a_headline_that_names_no_one_needs_more_to_join_a_story_that_does() -> None:
    item = {"strike": 0.6, "kill": 0.6, "people": 0.53}
    sudan = Candidate(1, {"strike": 0.3, "kill": 0.3, "sudan": 0.9}, {}, frozenset({"sudan"}), 3)
    rules = GroupingRules(threshold=0.1, unnamed_threshold=0.5)
    assert decide(item, [sudan], rules) == Decision(None)
    assert decide(item, [sudan], GroupingRules(threshold=0.1, unnamed_threshold=0.3)) == Decision(1)
    unnamed = Candidate(1, {"strike": 0.3, "kill": 0.3, "market": 0.9}, {}, frozenset(), 3)
    assert decide(item, [unnamed], rules) == Decision(1)


@pytest.mark.parametrize(
    ("title", "outlet", "expected"),
    [
        ("Jesse Jackson dies at 84 - BBC News", "BBC News", "Jesse Jackson dies at 84"),
        ("Reuters | Markets slide", "Reuters", "Markets slide"),
        ("Geneva talks resume — The Guardian", "the guardian", "Geneva talks resume"),
        ("Obama - Putin call", "Reuters", "Obama - Putin call"),
        ("Reuters", "Reuters", "Reuters"),
    ],
)
def test_outlet_names_are_stripped_from_title_edges(title: str, outlet: str, expected: str) -> None:
    assert strip_outlet_name(title, outlet) == expected


def _candidate(story: int, vector: dict[str, float]) -> Candidate:
    return Candidate(story, vector, vector)


def test_an_item_joins_the_most_similar_story_above_the_threshold() -> None:
    item = {"fed": 0.8, "taper": 0.6}
    rules = GroupingRules(threshold=0.5, merge_threshold=0.99)
    candidates = [
        _candidate(1, {"fed": 1.0}),
        _candidate(2, {"fed": 0.6, "taper": 0.8}),
        _candidate(3, {"apple": 1.0}),
    ]
    assert decide(item, candidates, rules) == Decision(2)
    assert decide(item, [_candidate(3, {"apple": 1.0})], rules) == Decision(None)


def test_an_item_that_bridges_two_similar_stories_merges_them() -> None:
    item = {"fed": 0.8, "taper": 0.6}
    close = [_candidate(1, {"fed": 0.6, "taper": 0.8}), _candidate(2, {"fed": 0.95, "taper": 0.31})]
    assert decide(item, close, GroupingRules(threshold=0.5, merge_threshold=0.5)) == Decision(
        1, (2,)
    )
    # Stories unlike each other stay apart even if the item reaches both.
    apart = [_candidate(1, {"fed": 0.2, "taper": 0.98}), _candidate(2, {"fed": 0.98, "taper": 0.2})]
    assert decide(item, apart, GroupingRules(threshold=0.5, merge_threshold=0.9)) == Decision(2)


def test_the_largest_story_takes_in_the_ones_an_item_bridges() -> None:
    item = {"fed": 0.8, "taper": 0.6}
    small = Candidate(1, {"fed": 0.6, "taper": 0.8}, {"fed": 0.6, "taper": 0.8}, size=2)
    large = Candidate(2, {"fed": 0.95, "taper": 0.31}, {"fed": 9.5, "taper": 3.1}, size=40)
    rules = GroupingRules(threshold=0.5, merge_threshold=0.5)
    assert decide(item, [small, large], rules) == Decision(2, (1,))


def test_one_shared_word_is_a_topic_not_a_story() -> None:
    item = {"strike": 0.9, "sudan": 0.44}
    lufthansa = _candidate(1, {"strike": 0.9, "lufthansa": 0.44})
    assert decide(item, [lufthansa], GroupingRules(threshold=0.5)) == Decision(None)
    assert decide(item, [lufthansa], GroupingRules(threshold=0.5, shared_terms=1)) == Decision(1)


def test_a_storys_subject_alone_is_shared_enough_when_the_item_names_it() -> None:
    # UCI's South by Southwest story: "SXSW 2014: 10 Artists to Watch" shares only SXSW
    # with it, the name most of its reports give.
    item = {"sxsw": 0.6, "artist": 0.56, "watch": 0.56}
    story = {"sxsw": 0.7, "music": 0.5, "festival": 0.5}
    sxsw = Candidate(1, story, story, frozenset({"sxsw"}), size=5, subject=frozenset({"sxsw"}))
    about_sxsw = Candidate(1, story, story, frozenset({"sxsw"}), size=5)  # no subject
    rules = GroupingRules(threshold=0.3)
    assert decide(item, [sxsw], rules, frozenset({"sxsw"})) == Decision(1)
    assert decide(item, [about_sxsw], rules, frozenset({"sxsw"})) == Decision(None)
    # ... named, not a word in lower case
    assert decide(item, [sxsw], rules) == Decision(None)


def test_items_naming_others_than_the_story_does_not_join_it() -> None:
    item = {"die": 0.6, "aged": 0.6, "duvall": 0.53}
    jackson = Candidate(1, {"die": 0.6, "aged": 0.6, "jackson": 0.53}, {}, frozenset({"jackson"}))
    rules = GroupingRules(threshold=0.5)
    assert decide(item, [jackson], rules, frozenset({"duvall"})) == Decision(None)
    assert decide(item, [jackson], rules, frozenset({"jackson"})) == Decision(1)


def test_two_headlines_alone_need_more_in_common_than_a_headline_and_a_story() -> None:
    item = {"back": 0.6, "home": 0.6, "venezuela": 0.53}
    story = {"back": 0.3, "home": 0.3, "hungrypanda": 0.9}  # cosine 0.36
    rules = GroupingRules(threshold=0.3, pair_threshold=0.4)
    assert decide(item, [Candidate(1, story, story, size=1)], rules) == Decision(None)
    assert decide(item, [Candidate(1, story, story, size=3)], rules) == Decision(1)
    # Never below the threshold itself.
    lower = GroupingRules(threshold=0.4, pair_threshold=0.2)
    assert decide(item, [Candidate(1, story, story, size=1)], lower) == Decision(None)


def test_a_summary_lead_counts_less_than_the_headline_and_names_no_one() -> None:
    found = terms(
        "A New Chapter for Bangladesh",
        "The Bangladesh Nationalist Party claims victory in the country's first elections "
        + "filler " * 40
        + "Tarique",
    )
    assert {"^chapter", "^bangladesh", "~bangladesh", "~nationalist", "~election"} <= set(found)
    assert not any(term.startswith("~") and term[1] in "^?" for term in found)
    assert "~tarique" not in found  # past the lead
    vector = stories.weigh(found, {}, GroupingRules(summary_weight=0.4))
    assert vector["bangladesh"] == vector["chapter"] > 2 * vector["election"]
    assert "election" not in stories.weigh(found, {}, GroupingRules(summary_weight=0))


def _story_of(index: StoryIndex, title: str, summary: str | None = None) -> int:
    return index.assign(terms(title, summary), T0)


def _election_stream(rules: GroupingRules | None = None) -> tuple[StoryIndex, int]:
    index = StoryIndex(rules or GroupingRules())
    for n in range(30):  # a stream, so that the election's words are not everywhere
        _story_of(index, f"Unrelated report {n} on markets{n} and weather{n}")
    sworn = _story_of(index, "Tarique Rahman sworn in as Bangladesh's PM after election victory")
    assert _story_of(index, "Bangladesh's new prime minister sworn in after election win") == sworn
    return index, sworn


def test_a_summary_brings_its_item_to_the_story_its_headline_names() -> None:
    index, sworn = _election_stream()
    assert _story_of(index, "A New Chapter for Bangladesh") != sworn  # one name: a topic
    index, sworn = _election_stream()
    summary = "The Bangladesh Nationalist Party claims victory in the country's first elections."
    assert _story_of(index, "A New Chapter for Bangladesh", summary) == sworn
    index, sworn = _election_stream(GroupingRules(summary_weight=0))  # summaries off
    assert _story_of(index, "A New Chapter for Bangladesh", summary) != sworn


def test_a_summary_does_not_bring_an_item_that_shares_one_common_word() -> None:
    index = StoryIndex(GroupingRules())
    for n in range(30):
        _story_of(index, f"Unrelated report {n} on markets{n} and weather{n}")
    capitol = _story_of(index, "Man arrested after running toward capitol with shotgun, say police")
    assert _story_of(index, "18-Year-Old Man Arrested After Running Toward Capitol") == capitol
    stabbing = _story_of(
        index,
        "Man, 19, released without charge after fatal Arnhem Land stabbing",
        "Police say a 19-year-old man arrested over the stabbing death of another man "
        "has been released without charge.",
    )
    assert stabbing != capitol


def test_a_title_case_headline_marks_no_names() -> None:
    title_case = terms("Botswana: Malaria Claims One As Cases Rise in North West District")
    assert not any(term.startswith("^") for term in title_case)
    assert "^west" in terms("Israel moves to claim West Bank land")


def test_related_headlines_share_a_story_and_others_do_not() -> None:
    index = StoryIndex(GroupingRules(threshold=0.2))
    fed = index.assign(terms("Fed official says weak data caused by weather"), T0)
    same = index.assign(terms("Fed official: weather caused weak data, taper goes on"), T0)
    other = index.assign(terms("Apple unveils a bigger iPhone"), T0)
    assert same == fed
    assert other != fed


def test_a_story_takes_no_items_after_the_window() -> None:
    rules = GroupingRules(threshold=0.2, window=timedelta(hours=72))
    index = StoryIndex(rules)
    first = index.assign(terms("Geneva talks on Ukraine resume"), T0)
    later = index.assign(terms("Geneva talks on Ukraine resume"), T0 + timedelta(days=4))
    assert later != first


def test_an_archive_item_finds_its_days_story_past_many_later_stories() -> None:
    """An item dated before the index's newest stories walks past them, but only so
    many per word: its story is found through its rarer words, before the common ones."""
    index = StoryIndex(GroupingRules())
    story = index.assign(terms("Kyrgyz parliament ratifies Bishkek water treaty"), T0)
    index.assign(terms("Bishkek water treaty: Kyrgyz parliament votes yes"), T0 + timedelta(days=2))
    later = T0 + timedelta(days=4)  # after the window of an item of T0
    for n in range(400):  # a busy stream of other water news
        index.assign(terms(f"Water {_word(n)} {_word(n + 1000)} {_word(n + 2000)}"), later)
    archive = index.place(terms("Kyrgyz parliament ratifies water treaty in Bishkek"), T0)
    assert (archive.story, archive.created) == (story, False)


def _word(n: int) -> str:
    letters = "bcdfghjklmnpqrstvwxz"
    return "".join(letters[(n // 20**k) % 20] + "o" for k in range(3))


def test_bcubed_and_pairwise_scores_by_hand() -> None:
    gold = {"a": "x", "b": "x", "c": "y"}
    predicted = {"a": 1, "b": 2, "c": 2}
    result = score(gold, predicted)
    # precision per item: a 1/1, b 1/2, c 1/2 -> 2/3; recall: a 1/2, b 1/2, c 1/1 -> 2/3
    assert result.bcubed_precision == pytest.approx(2 / 3)
    assert result.bcubed_recall == pytest.approx(2 / 3)
    assert result.pairwise_precision == 0.0  # the one predicted pair (b, c) is wrong
    assert result.pairwise_recall == 0.0  # the one gold pair (a, b) was split
    perfect = score(gold, {"a": 1, "b": 1, "c": 2})
    assert perfect.bcubed_f1 == 1.0 and perfect.pairwise_precision == 1.0


def test_dev_stories_are_grouped_with_high_precision() -> None:
    """The labelled development half (44 stories, 2,622 headlines; see PROVENANCE.md).

    Measured at the defaults (2026-11-28): B-cubed P 0.928, R 0.804, F1 0.862. The floors
    catch a regression; they are not what the issue asks of unseen stories (F1 0.80 at
    P 0.85), which is measured on the held-back half.
    """
    headlines = read_labelled(DEV)
    result = score({h.id: h.story for h in headlines}, assign_stories(headlines, GroupingRules()))
    assert result.items == 2622 and result.gold_stories == 44
    assert result.bcubed_precision >= 0.87
    assert result.bcubed_f1 >= 0.82


def test_unreadable_labelled_files_give_clear_errors(tmp_path: Path) -> None:
    missing = tmp_path / "cols.csv"
    missing.write_text("ID,TITLE\n1,x\n")
    with pytest.raises(EvaluationInputError, match=r"missing column.*PUBLISHER"):
        read_labelled(missing)
    bad_time = tmp_path / "time.csv"
    bad_time.write_text("ID,TITLE,PUBLISHER,STORY,TIMESTAMP\n1,x,p,s,yesterday\n")
    with pytest.raises(EvaluationInputError, match=r"time.csv:2: TIMESTAMP"):
        read_labelled(bad_time)


def test_eval_grouping_command(tmp_path: Path) -> None:
    out = tmp_path / "predicted.csv"
    done = subprocess.run(
        [sys.executable, "-m", "aggregator.cli", "eval-grouping", str(DEV), "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert re.search(r"B-cubed   precision 0\.\d{3}  recall 0\.\d{3}  F1 0\.\d{3}", done.stdout)
    rows = out.read_text().splitlines()
    assert rows[0] == "ID,predicted_story" and len(rows) == 2623
    bad = subprocess.run(
        [sys.executable, "-m", "aggregator.cli", "eval-grouping", str(tmp_path / "none.csv")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1
    assert "cannot read" in bad.stderr and "Traceback" not in bad.stderr


def _capture_stories(
    capture: str = "kagi-fastfeedparser-2026-02-18",
) -> list[list[tuple[str, str]]]:
    """Stories over feeds captured together: 26 world-news feeds of 2026-02-18, or 20
    feeds in six languages of 2017-01-07."""
    from aggregator.parse import parse_feed
    from aggregator.process.normalize import normalize_items

    folder = corpus_dir() / "news-same-story" / capture
    items = []
    for path in sorted(folder.iterdir()):
        feed = parse_feed(
            path.read_bytes(), content_type=None, url=f"https://x.example/{path.name}"
        )
        for item in normalize_items(feed.items, source_name=path.stem, now=T0):
            outlet = feed.title or path.stem
            items.append((item.published or T0, path.stem, outlet, item.title, item.lead))
    items.sort(key=lambda entry: entry[0])
    index = StoryIndex(GroupingRules())
    assigned = [(index.assign(terms(title, summary, outlet=outlet), when), source, title)
                for when, source, outlet, title, summary in items]  # fmt: skip
    stories: dict[int, list[tuple[str, str]]] = {}
    for story, source, title in assigned:
        stories.setdefault(index.story_of(story), []).append((source, title))
    return list(stories.values())


def _story_with(stories: list[list[tuple[str, str]]], words: str) -> list[tuple[str, str]]:
    matching = [s for s in stories if any(words in title for _, title in s)]
    return max(matching, key=len)


def test_same_time_capture_finds_multi_outlet_stories_without_false_merges() -> None:
    stories = _capture_stories()
    jackson = _story_with(stories, "Jesse Jackson")
    assert len({source for source, _ in jackson}) >= 6
    assert not any("Duvall" in title for _, title in jackson)  # another death, same day
    peru = _story_with(stories, "Jerí")
    assert len({source for source, _ in peru}) >= 6
    # Bangladesh's new prime minister: four outlets by their headlines, four more
    # (The Economist, The Week, Foreign Policy, the NYT) by their summaries.
    bangladesh = _story_with(stories, "Tarique Rahman")
    assert len({source for source, _ in bangladesh}) >= 8
    assert sum(len({s for s, _ in story}) >= 2 for story in stories) >= 40
    # The two sets of talks in Geneva that week: Iran's with the US, Russia's with Ukraine.
    iran = _story_with(stories, "Iran’s top diplomat")
    ukraine = _story_with(stories, "Russia hammers Ukraine")
    assert len({source for source, _ in iran}) >= 8 and len({s for s, _ in ukraine}) >= 8
    assert not any("Russia hammers Ukraine" in title for _, title in iran)
    # Pairs that once shared a story on two common words ("back home", "says ... Israel"),
    # or on "European leaders" alone.
    for one, other in [
        ("HungryPanda delivery drivers", "Venezuelans Abroad"),
        ("LeBron James", "Erdogan"),
        ("Navalny", "Rubio"),
        ("Navalny", "kidnapped grandfather"),  # "likely" and "say", named by no one
        ("Rafale", "nature-saving business"),  # "boost" and "business"
        # Once summaries counted: "Washington" and a WordPress footer's "The post ...";
        # "man" and a summary's "police say ... arrested".
        ("Washington Post", "Siege of Boston"),
        ("capitol", "Arnhem Land"),
        # Strikes that kill people, in a market in Sudan and on boats in the Caribbean;
        # two people telling the BBC.
        ("Strike on market in Sudan", "drug"),
        ("Pelicot", "Mark Kelly"),
        # Dates say when, not what: "All of Africa Today - February 17, 2026".
        ("All of Africa Today", "Magazine solutions"),
        # ICE, the agency, is not Greenland's "piece of ice" (both with Trump).
        ("Colombian pro-Trump lawmaker", "piece of ice"),
        # A Title Case "West", a name only in the stream's usage of "West Bank".
        ("West Bank", "North West District"),
    ]:
        assert not any(other in title for _, title in _story_with(stories, one))


def test_the_index_forgets_what_fell_out_of_the_window() -> None:
    index = StoryIndex(GroupingRules(window=timedelta(hours=1)))
    for n in range(50):
        index.assign(terms(f"Unique{n} headline about topic{n} number{n}"), T0)
    assert index.size[0] == 50 and index.size[1] >= 150
    index.assign(terms("Jesse Jackson dies at 84"), T0 + timedelta(hours=3))
    index.prune(T0 + timedelta(hours=3))
    assert index.size == (1, len(terms("Jesse Jackson dies at 84")))


def test_multilingual_capture_joins_an_event_across_languages_not_common_words() -> None:
    stories = _capture_stories("codehollow-feedreader-2017-01-07")
    shooting = _story_with(stories, "Fort Lauderdale")
    outlets = {source for source, _ in shooting}
    assert len(outlets) >= 5
    assert {"lemonde-fr", "spiegel-online-de"} <= outlets
    satire = _story_with(stories, "La cruche")
    assert not any("Charlie Hebdo" in title for _, title in satire)  # they share only "la"


def test_an_item_older_than_a_story_by_more_than_the_window_does_not_join_it() -> None:
    # An outlet's archive, read after newer reports: "Beijing signals readiness to talk
    # to Trump's team" of January 2025 had begun a chain into Iran's talks of 2026.
    index = StoryIndex(GroupingRules())
    talks = index.assign(terms("Trump says Iran talks in Geneva will resume"), T0)
    assert index.assign(terms("Trump says Iran talks in Geneva may resume"), T0) == talks
    a_year_before = T0 - timedelta(days=365)
    assert (
        index.assign(terms("Trump says Iran talks in Geneva could resume"), a_year_before) != talks
    )
    assert (
        index.assign(terms("Trump says Iran talks in Geneva to resume"), T0 - timedelta(hours=70))
        == talks
    )


def test_an_archive_read_late_does_not_hide_the_live_story() -> None:
    index = StoryIndex(GroupingRules())
    live = index.assign(terms("Trump says Iran talks in Geneva will resume"), T0)
    for n in range(20):  # an outlet's archive: old stories on the same words, posted later
        old = T0 - timedelta(days=30 + 4 * n)  # each its own story
        index.assign(terms(f"Trump says Iran talks in Geneva may resume, round {1000 + n}"), old)
    assert index.assign(terms("Trump says Iran talks in Geneva to resume"), T0) == live


def test_a_headline_leaving_out_a_storys_subject_for_a_name_of_its_own_needs_more() -> None:
    # Iran's talks in Geneva, then DW's "Ukraine updates: Peace talks in Geneva": "talks"
    # and "Geneva" in common, but not Iran, which every report of the story names, and
    # Ukraine, which none does.
    def place_ukraine_after_iran(subject_threshold: float) -> tuple[int, int, int]:
        index = StoryIndex(GroupingRules(subject_threshold=subject_threshold))
        for n, title in enumerate(["Protests spread in Iran", "New sanctions on Iran"]):
            index.assign(terms(title), T0 + timedelta(minutes=n))  # Iran: a name
        iran = [
            index.assign(terms(title), T0 + timedelta(hours=1, minutes=n))
            for n, title in enumerate(
                [
                    "Iran’s top diplomat to attend 'indirect' talks with U.S. in Geneva",
                    "Iran meets U.N. nuclear watchdog in Geneva ahead of U.S. talks",
                    "Trump says he will be involved indirectly in Iran talks",
                    "U.S. and Iran to hold a second round of nuclear talks in Geneva",
                ]
            )
        ]
        assert len(set(iran)) == 1
        later = T0 + timedelta(hours=2)
        ukraine = index.assign(terms("Ukraine updates: Peace talks in Geneva 'very tense'"), later)
        again = index.assign(terms("Iran and U.S. end talks in Geneva without a deal"), later)
        return iran[0], ukraine, again

    iran, ukraine, again = place_ukraine_after_iran(0.35)
    assert ukraine != iran and again == iran
    iran, ukraine, again = place_ukraine_after_iran(GroupingRules().threshold)  # rule off
    assert ukraine == iran


def test_a_word_in_lower_case_is_not_the_name_a_story_only_ever_capitalised() -> None:
    index = StoryIndex(GroupingRules())
    arrests = index.assign(terms("Lawmaker backing Trump asks for help as ICE holds her son"), T0)
    again = T0 + timedelta(hours=1)
    assert index.assign(terms("Congresswoman backing Trump denounces ICE"), again) == arrests
    ice = index.assign(terms("Greenland is a piece of ice, says Trump"), again)
    assert ice != arrests
    # ... while a name both write in capitals is shared as before
    assert index.assign(terms("ICE holds son of lawmaker backing Trump"), again) == arrests


def test_a_title_case_headline_giving_part_of_a_storys_subject_needs_more() -> None:
    # allafrica's "Botswana: Malaria Claims One As Cases Rise in North West District"
    # had joined the West Bank story of 2026-02-18 on "claims" and "West": in Title Case,
    # "West" is a name only because the stream writes "West Bank" so, and the story's
    # subject is West Bank, not West.
    def place_botswana(unnamed_threshold: float) -> tuple[int, int, int, int]:
        index = StoryIndex(GroupingRules(unnamed_threshold=unnamed_threshold))
        west_bank = {
            index.assign(terms(title), T0 + timedelta(minutes=n))
            for n, title in enumerate(
                [
                    "Israel moves to claim West Bank land as state property",
                    "Arab states condemn Israel's claim to West Bank land",
                    "UN calls on Israel to reverse its West Bank land claim",
                    "Palestinians see annexation in Israel's West Bank land claim",
                ]
            )
        }
        (story,) = west_bank
        later = T0 + timedelta(hours=1)
        botswana = terms("Botswana: Malaria Claims One As Cases Rise in North West District")
        again = terms("Jordan Condemns Israel's West Bank Land Claim")  # all the subject
        # ... all of it too, and no closer (0.16) than Botswana's headline (0.14)
        whole = terms("Settler Violence Rises Across West Bank Villages")
        return (
            story,
            index.assign(botswana, later),
            index.assign(again, later),
            index.assign(whole, later),
        )

    story, botswana, again, whole = place_botswana(GroupingRules().unnamed_threshold)
    assert botswana != story and again == story and whole == story
    story, botswana, again, whole = place_botswana(GroupingRules().threshold)  # rule off
    assert botswana == story
