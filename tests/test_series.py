from __future__ import annotations

from aggregator.process.series import SeriesRule, SeriesText, compile_rule, series_for
from aggregator.types import Category
from tests.builders import make_item


def slugs(item: SeriesText, rules: list[SeriesRule]) -> tuple[str, ...]:
    return tuple(found.slug for found in series_for(item, rules))


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
    assert slugs(item, [ISLAMIC_STATE, GENEVA]) == ("islamic-state",)


def test_keywords_match_whole_words_in_title_or_summary() -> None:
    assert slugs(make_item("a", title="Daesh claims attack"), [ISLAMIC_STATE]) == ("islamic-state",)
    assert slugs(make_item("c", title="Crisis in Paris"), [ISLAMIC_STATE]) == ()
    assert slugs(make_item("d", title="Isiscorp earnings"), [ISLAMIC_STATE]) == ()


def test_a_keyword_only_the_summary_has_is_a_weak_signal() -> None:
    # "... talks on Ukraine and Iran": a summary may name what the article is not about.
    once = make_item("b", title="Attack", summary_html="<p>Claimed by <b>ISIS</b>.</p>")
    assert slugs(once, [ISLAMIC_STATE]) == ()
    (found,) = series_for(once, [compile_rule("is", [], ["ISIS"], min_score=1)])
    assert found.reason == "keyword 'ISIS' in the summary"
    twice = make_item("c", title="Attack", summary_html="<p>ISIS, also called Daesh</p>")
    assert slugs(twice, [ISLAMIC_STATE]) == ("islamic-state",)


def test_phrases_allow_any_whitespace_and_unicode() -> None:
    assert slugs(make_item("a", title="The Geneva\n talks resume"), [GENEVA]) == ("geneva",)
    rule = compile_rule("ru", [], ["Украина"])
    assert slugs(make_item("b", title="Новости: Украина сегодня"), [rule]) == ("ru",)


def test_content_opening_is_used_when_there_is_no_summary() -> None:
    rule = compile_rule("is", [], ["ISIL"], min_score=1)
    item = make_item("a", title="Attack", summary_html=None, content_html="<p>ISIL said</p>")
    assert slugs(item, [rule]) == ("is",)
    late = make_item(
        "b", title="x", summary_html=None, content_html="<p>" + "a " * 2000 + "ISIL</p>"
    )
    assert slugs(late, [rule]) == ()


NYT_DES = "http://www.nytimes.com/namespaces/keywords/des"
NYT_GEO = "http://www.nytimes.com/namespaces/keywords/nyt_geo"


def test_a_category_rule_may_ask_for_a_domain() -> None:
    rule = compile_rule("ukraine", [("Ukraine", "*/keywords/des")])
    running = make_item("a", categories=(Category(term="Ukraine", domain=NYT_DES),))
    place = make_item("b", categories=(Category(term="Ukraine", domain=NYT_GEO),))
    bare = make_item("c", categories=(Category(term="Ukraine"),))
    assert slugs(running, [rule]) == ("ukraine",)
    assert slugs(place, [rule]) == () and slugs(bare, [rule]) == ()
    assert slugs(place, [compile_rule("any", ["ukraine"])]) == ("any",)


def test_a_match_says_which_signals_it_saw() -> None:
    rule = compile_rule(
        "geneva", [("Geneva talks", None)], ["Geneva", "Iran"], regexes=[r"\btalks?\b"]
    )
    item = make_item(
        "a",
        title="Iran and the US hold talks in Geneva",
        categories=(Category(term="Geneva Talks"),),
    )
    (found,) = series_for(item, [rule])
    assert found.reason == "category 'Geneva talks', keyword 'Geneva', keyword 'Iran'"


def test_signals_add_up_to_min_score_and_exclusions_veto() -> None:
    rule = compile_rule(
        "davos", [], ["Davos", "World Economic Forum"], exclude=["ski"], min_score=4
    )
    assert slugs(make_item("a", title="Leaders gather in Davos"), [rule]) == ()
    both = make_item("b", title="Davos: the World Economic Forum opens")
    assert slugs(both, [rule]) == ("davos",)
    ski = make_item("c", title="Davos World Economic Forum ski slopes empty")
    assert slugs(ski, [rule]) == ()
    assert slugs(make_item("d", title="Davos World Economic Forum skiing"), [rule]) == ("davos",)


def test_a_title_regex_is_a_signal() -> None:
    rule = compile_rule("g7", [], [], regexes=[r"\bG-?7\b"])
    assert slugs(make_item("a", title="Macron invites Modi to the G7 summit"), [rule]) == ("g7",)
    assert slugs(make_item("b", title="The G77 meets"), [rule]) == ()


def test_a_rule_listens_to_its_sources_or_tags_only() -> None:
    everyone = compile_rule("x", [], ["x"])
    assert everyone.applies_to("bbc", ())
    rule = compile_rule("x", [], ["x"], sources=["nyt"], tags=["europe"])
    assert rule.applies_to("nyt", ())
    assert rule.applies_to("dw", ("world", "europe"))
    assert not rule.applies_to("bbc", ("world",))


def test_a_match_by_an_outlets_tag_is_marked_tagged() -> None:
    rule = compile_rule("ukraine", [("Ukraine", None)], ["Ukraine"])
    (by_tag,) = series_for(make_item("a", categories=(Category(term="Ukraine"),)), [rule])
    (by_word,) = series_for(make_item("b", title="Ukraine talks", categories=()), [rule])
    assert by_tag.tagged and not by_word.tagged
