"""Config loading: every mistake is reported with file, line and key path."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from aggregator.exceptions import ConfigError
from aggregator.settings import load_settings, parse_duration, parse_size
from tests.conftest import REPO

MINIMAL = """\
database: sqlite:///agg.db
sources:
  - name: bbc
    url: https://feeds.bbci.co.uk/news/world/rss.xml
    tags: [world]
  - name: local
    url: file:snapshots/local.xml
series:
  - slug: is
    title: Islamic State
    match:
      keywords: [ISIS]
feeds:
  - slug: world
    title: World
    tags: [world]
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(_write(tmp_path, text), environ={})
    return [str(p) for p in caught.value.problems]


def test_minimal_config_loads_with_defaults(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, MINIMAL), environ={})
    assert settings.polling.interval == timedelta(minutes=15)
    assert settings.polling.max_bytes == 10_000_000
    assert settings.database == f"sqlite:///{tmp_path / 'agg.db'}"
    assert settings.sources[1].url == (tmp_path / "snapshots/local.xml").as_uri()
    assert settings.feed_source_filters(settings.feeds[0]) == (("bbc",),)
    assert settings.server.public_url == "http://127.0.0.1:8080"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "polling:\n  interval: 15 minutes\n",
            "config.yaml:2: polling.interval: expected a duration",
        ),
        ("polling:\n  timout: 3s\n", "config.yaml:2: polling.timout: unknown key 'timout'"),
        ("server:\n  listen: localhost\n", "config.yaml:2: server.listen: expected host:port"),
        (
            "polling:\n  max_bytes: 10 parsecs\n",
            "config.yaml:2: polling.max_bytes: unknown size unit",
        ),
        (
            "sources:\n  - name: Bad Name\n    url: https://x.example/\n",
            "config.yaml:2: sources[0].name: expected lower-case letters",
        ),
        (
            "sources:\n  - name: a\n    url: ftp://x.example/\n",
            "config.yaml:3: sources[0].url: expected an http://, https:// or file: URL",
        ),
        ("sources:\n  - name: a\n", "config.yaml:2: sources[0].url: required key is missing"),
        (
            "sources:\n  - name: a\n    url: https://a.example/\n    url: https://b.example/\n",
            "config.yaml:4: sources[0].url: duplicate key (first given on line 3)",
        ),
        (
            "sources:\n  - {name: a, url: 'https://a.example/'}\n  - {name: a, url: 'https://b.example/'}\n",
            "config.yaml:3: sources[1].name: duplicate source name 'a'",
        ),
        (
            "feeds:\n  - slug: f\n    title: F\n    sources: [nope]\n",
            "config.yaml:4: feeds[0].sources[0]: unknown source 'nope'",
        ),
        (
            "feeds:\n  - slug: f\n    title: F\n    series: [nope]\n",
            "config.yaml:4: feeds[0].series[0]: unknown series 'nope'",
        ),
        (
            "series:\n  - slug: s\n    title: S\n    match:\n      regex: ['(unclosed']\n",
            "config.yaml:5: series[0].match.regex[0]: not a valid regular expression",
        ),
        (
            "series:\n  - slug: s\n    title: S\n    match:\n      keywords: [a]\n"
            "      min_score: 3\n",
            "config.yaml:6: series[0].match.min_score: min_score 3 is more than the given",
        ),
        (
            "series:\n  - slug: s\n    title: S\n    match:\n      keywords: [a]\n"
            "      sources: [nope]\n",
            "config.yaml:6: series[0].match.sources[0]: unknown source 'nope'",
        ),
        (
            "series:\n  - slug: s\n    title: S\n    match:\n      sources: [bbc]\n",
            "series[0].match: give at least one of categories, keywords or regex",
        ),
        (
            "database: ${DB_URL}\n",
            "config.yaml:1: database: environment variable DB_URL is not set",
        ),
        ("sources: [\n", "config.yaml:2: invalid YAML"),
        ("database: not a url\n", "config.yaml:1: database: expected a database URL"),
        (
            "feeds:\n  - slug: f\n    title: <img src=x onerror=alert(1)>\n",
            "config.yaml:3: feeds[0].title: expected plain text without markup",
        ),
    ],
)
def test_mistakes_are_located(tmp_path: Path, text: str, expected: str) -> None:
    problems = _problems(tmp_path, text)
    assert any(p.endswith(expected) or expected in p for p in problems), problems
    assert all(p.startswith(str(tmp_path / "config.yaml")) for p in problems)


def test_every_mistake_is_reported_at_once(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        "feeds:\n  - slug: f\n    title: F\n    sources: [x, y]\n    series: [z]\n",
    )
    assert len(problems) == 3


def test_environment_variables_are_expanded(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "database: postgresql+psycopg://u:${PW}@db/x\nserver:\n  listen: ${L:-0.0.0.0:9000}\n",
    )
    settings = load_settings(path, environ={"PW": "s3cret"})
    assert settings.database == "postgresql+psycopg://u:s3cret@db/x"
    assert settings.server.port == 9000


def test_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found; pass --config FILE"):
        load_settings(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("value", "seconds"), [("30s", 30), ("15m", 900), ("2h", 7200), ("1d", 86400), (45, 45)]
)
def test_durations(value: object, seconds: int) -> None:
    assert parse_duration(value) == timedelta(seconds=seconds)


@pytest.mark.parametrize("value", ["0s", "-5m", "5 weeks", "m", True])
def test_bad_durations(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


def test_sizes() -> None:
    assert parse_size("10MB") == 10_000_000
    assert parse_size("512KiB") == 512 * 1024
    assert parse_size(2048) == 2048


@pytest.mark.parametrize("name", ["aggregator.yaml", "demo.yaml"])
def test_bundled_configs_pass_check(name: str) -> None:
    settings = load_settings(REPO / "config" / name, environ={})
    assert len(settings.sources) >= 8
    assert settings.feeds
    assert any(s.slug == "islamic-state" for s in settings.series)


def test_every_grouping_key_reaches_the_rules_the_daemon_uses(tmp_path: Path) -> None:
    from dataclasses import fields

    from aggregator.pipeline import duplicate_rules, grouping_rules

    config = MINIMAL + (
        "grouping:\n  threshold: 0.21\n  pair_threshold: 0.31\n  unnamed_threshold: 0.27\n"
        "  subject_threshold: 0.33\n  merge_threshold: 0.41\n  window: 5h\n  capital_boost: 1.5\n"
        "  summary_weight: 0.6\n"
        "  duplicate_threshold: 0.81\n"
    )
    settings = load_settings(_write(tmp_path, config), environ={})
    configured = settings.grouping.model_dump()
    rules = grouping_rules(settings)
    shared = [f.name for f in fields(rules) if f.name in configured]
    # series_story_share is the publishing side's (tests/test_regroup.py).
    assert set(shared) | {"duplicate_threshold", "series_story_share"} == set(configured)
    assert {name: getattr(rules, name) for name in shared} == {
        name: configured[name] for name in shared
    }
    duplicates = duplicate_rules(settings)
    assert (duplicates.threshold, duplicates.window) == (0.81, timedelta(hours=5))


def test_series_rules_take_categories_with_domains_and_every_signal(tmp_path: Path) -> None:
    config = MINIMAL.replace(
        "      keywords: [ISIS]\n",
        "      keywords: [ISIS]\n"
        "      categories:\n"
        "        - Islamic State\n"
        "        - {term: 'Islamic State (2014)', domain: '*/keywords/des'}\n"
        "      regex: ['\\bIS\\b']\n"
        "      exclude: [Islamic State of Mind]\n"
        "      tags: [world]\n"
        "      min_score: 4\n",
    )
    settings = load_settings(_write(tmp_path, config), environ={})
    match = settings.series[0].match
    assert [(c.term, c.domain) for c in match.categories] == [
        ("Islamic State", None),
        ("Islamic State (2014)", "*/keywords/des"),
    ]
    assert match.regex == (r"\bIS\b",) and match.min_score == 4 and match.tags == ("world",)
    from aggregator.series import series_rules

    (rule,) = series_rules(settings)
    assert rule.applies_to("bbc", ("world",)) and not rule.applies_to("local", ())


def test_series_may_be_a_mapping_of_auto_and_declared(tmp_path: Path) -> None:
    config = MINIMAL.replace(
        "series:\n  - slug: is\n",
        "series:\n  auto: {min_items: 4}\n  declared:\n  - slug: is\n",
    )
    settings = load_settings(_write(tmp_path, config), environ={})
    assert [s.slug for s in settings.series] == ["is"]
    assert settings.auto_series.enabled and settings.auto_series.min_items == 4
    plain = load_settings(_write(tmp_path, MINIMAL), environ={})
    assert not plain.auto_series.enabled
    on = MINIMAL.replace(
        "series:\n  - slug: is\n", "series:\n  auto: true\n  declared:\n  - slug: is\n"
    )
    assert load_settings(_write(tmp_path, on), environ={}).auto_series.enabled


def test_mistakes_in_the_series_mapping_are_located(tmp_path: Path) -> None:
    wrong = "series:\n  auto: true\n  declared:\n    - slug: Bad Slug\n      title: X\n"
    wrong += "      match:\n        keywords: [x]\n"
    problems = _problems(tmp_path, wrong)
    assert any(
        p.endswith("config.yaml:4: series[0].slug: expected lower-case letters, digits and -")
        or "config.yaml:4: series[0].slug" in p
        for p in problems
    ), problems
    unknown = _problems(tmp_path, "series:\n  automatic: true\n")
    assert unknown == [
        f"{tmp_path / 'config.yaml'}:2: series.automatic: "
        "unknown key 'automatic' (expected one of: auto, declared)"
    ]


def test_a_reload_applies_what_it_can_and_names_what_waits_for_a_restart() -> None:
    from aggregator.settings import Settings, live_changes

    running = Settings.model_validate(
        {"database": "sqlite:///a.db", "polling": {"concurrency": 4, "interval": "1h"}}
    )
    reloaded = Settings.model_validate(
        {
            "database": "sqlite:///b.db",
            "server": {"listen": "127.0.0.1:9999"},
            "polling": {"concurrency": 16, "interval": "5m"},
            "sources": [{"name": "bbc", "url": "https://bbc.example/feed"}],
        }
    )
    applied, waiting = live_changes(running, reloaded)
    assert waiting == ["database", "server", "polling.concurrency"]
    assert (applied.database, applied.server, applied.polling.concurrency) == (
        running.database,
        running.server,
        4,
    )
    assert applied.polling.interval == reloaded.polling.interval
    assert [s.name for s in applied.sources] == ["bbc"]
    assert live_changes(running, running) == (running, [])


def _keys(model: type, prefix: str = "") -> list[tuple[str, str]]:
    """(dotted path, key as written in YAML) of every field of the settings model."""
    from pydantic import BaseModel

    from aggregator.settings import _model_of

    found = []
    for name, field in model.model_fields.items():
        key = {"auto_series": "auto"}.get(name, name)
        path = f"{prefix}{key}"
        found.append((path, key))
        inner = _model_of(field.annotation)
        if inner is not None and issubclass(inner, BaseModel):
            found += _keys(inner, f"{path}.")
    return found


def test_every_config_key_is_documented() -> None:
    from aggregator.settings import Settings

    docs = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    spans = re.findall(r"`[^`\n]+`", docs)  # what the docs show as code

    def shown(key: str) -> bool:
        return any(re.search(rf"(?<![\w-]){re.escape(key)}(?![\w-])", span) for span in spans)

    missing = [path for path, key in _keys(Settings) if not shown(key)]
    assert missing == [], f"keys docs/configuration.md does not describe: {missing}"


def test_sources_by_name_and_their_intervals_follow_a_copy_with_other_settings(
    tmp_path: Path,
) -> None:
    text = (
        "polling: {interval: 2h}\n"
        "sources:\n"
        "  - {name: own, url: 'https://a.example/feed', interval: 1h}\n"
        "  - {name: default, url: 'https://b.example/feed'}\n"
        "  - {name: auto, url: 'https://c.example/feed', interval: auto}\n"
    )
    settings = load_settings(_write(tmp_path, text), environ={})
    hour = timedelta(hours=1)
    assert settings.intervals() == {"own": hour, "default": 2 * hour, "auto": None}
    assert settings.source("own") is settings.sources[0] and settings.source("nope") is None
    # model_copy keeps private attributes: what was indexed must not outlive a change.
    faster = settings.model_copy(
        update={"polling": settings.polling.model_copy(update={"interval": 3 * hour})}
    )
    assert faster.intervals()["default"] == 3 * hour
    fewer = settings.model_copy(update={"sources": settings.sources[1:]})
    assert fewer.source("own") is None and "own" not in fewer.intervals()
