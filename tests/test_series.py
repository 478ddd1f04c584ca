from __future__ import annotations

from aggregator.process.series import compile_rule, series_for
from aggregator.types import Category
from tests.builders import make_item

ISLAMIC_STATE = compile_rule(
    "islamic-state",
    ["Violence Erupts as Islamic State Rises"],
    ["Islamic State", "Daesh", "ISIS", "ISIL"],
)
GENEVA = compile_rule("geneva", [], ["Geneva talks"])


def test_category_matches_case_insensitively_and_ignores_running_counts() -> None:
    item = make_item(
        "a",
        title="Something else entirely",
        categories=(Category(term="violence erupts as islamic state rises (1881)"),),
    )
    assert series_for(item, [ISLAMIC_STATE, GENEVA]) == ("islamic-state",)


def test_keywords_match_whole_words_in_title_or_summary() -> None:
    assert series_for(make_item("a", title="Daesh claims attack"), [ISLAMIC_STATE]) == (
        "islamic-state",
    )
    summary = make_item("b", title="Attack", summary_html="<p>Claimed by <b>ISIS</b>.</p>")
    assert series_for(summary, [ISLAMIC_STATE]) == ("islamic-state",)
    assert series_for(make_item("c", title="Crisis in Paris"), [ISLAMIC_STATE]) == ()
    assert series_for(make_item("d", title="Isiscorp earnings"), [ISLAMIC_STATE]) == ()


def test_phrases_allow_any_whitespace_and_unicode() -> None:
    assert series_for(make_item("a", title="The Geneva\n talks resume"), [GENEVA]) == ("geneva",)
    rule = compile_rule("ru", [], ["Украина"])
    assert series_for(make_item("b", title="Новости: Украина сегодня"), [rule]) == ("ru",)


def test_content_opening_is_used_when_there_is_no_summary() -> None:
    item = make_item("a", title="Attack", summary_html=None, content_html="<p>ISIL said</p>")
    assert series_for(item, [ISLAMIC_STATE]) == ("islamic-state",)
    late = make_item(
        "b", title="x", summary_html=None, content_html="<p>" + "a " * 2000 + "ISIL</p>"
    )
    assert series_for(late, [ISLAMIC_STATE]) == ()
