"""The command line, run as a user runs it."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aggregator.cli import build_parser
from tests.conftest import DATA, REPO
from tests.feedserver import serve_directory


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aggregator.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


COMMANDS = ["check", "run", "poll", "serve", "migrate", "regroup", "sources"]


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(commands.choices)


def _every_command() -> list[str]:
    return sorted(_subcommands())


@pytest.mark.parametrize("command", [None, *_every_command()])
def test_help_describes_every_command(command: str | None) -> None:
    result = _cli(*([command] if command else []), "--help")
    assert result.returncode == 0, result.stderr
    assert "--config" in result.stdout
    if command is None:
        assert all(name in result.stdout for name in _every_command())
    else:  # every option and argument says what it does
        silent = [a.dest for a in _subcommands()[command]._actions if not a.help]
        assert silent == [], f"{command}: no help for {silent}"


def test_poll_logs_a_json_line_per_poll(tmp_path: Path) -> None:
    import json

    www = tmp_path / "www"
    www.mkdir()
    shutil.copy(DATA / "e2e" / "npr-world.xml", www / "npr.xml")
    with serve_directory(www) as server:
        config = tmp_path / "aggregator.yaml"
        config.write_text(
            f"database: sqlite:///{tmp_path / 'db.sqlite'}\n"
            "polling:\n  allow_networks: [127.0.0.1/32]\n"
            f"sources:\n  - name: npr\n    url: {server.url('npr.xml')}\n",
            encoding="utf-8",
        )
        result = _cli("--config", str(config), "--log-format", "json", "poll")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines()]  # every line is JSON
    (poll,) = [r for r in records if r["logger"] == "aggregator.polls"]
    assert (poll["source"], poll["outcome"], poll["http_status"]) == ("npr", "ok", 200)
    assert poll["bytes"] == (www / "npr.xml").stat().st_size
    assert poll["items_new"] == poll["items"] > 0 and poll["items_updated"] == 0
    assert poll["fetch_seconds"] >= 0 and poll["parse_seconds"] >= 0
    assert poll["message"].startswith(f"npr: {poll['items']} items, {poll['items']} new")


def test_every_command_is_wired() -> None:
    parser = build_parser()
    for command in COMMANDS:
        assert parser.parse_args([command]).command == command


@pytest.mark.parametrize("command", COMMANDS)
def test_config_errors_exit_2_with_file_and_line(tmp_path: Path, command: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("polling:\n  interval: often\n", encoding="utf-8")
    result = _cli("--config", str(config), command)
    assert result.returncode == 2
    assert f"{config}:2: polling.interval: expected a duration" in result.stderr
    assert "Traceback" not in result.stderr


def test_config_option_after_the_command_and_from_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "ok.yaml"
    config.write_text("sources: []\n", encoding="utf-8")
    assert _cli("check", "--config", str(config)).returncode == 0
    env_run = subprocess.run(
        [sys.executable, "-m", "aggregator.cli", "check"],
        capture_output=True,
        text=True,
        env={"AGGREGATOR_CONFIG": str(config), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert env_run.returncode == 0, env_run.stderr
    assert "config OK: 0 sources" in env_run.stdout


def test_poll_reports_failures_and_sources_shows_them(tmp_path: Path) -> None:
    www = tmp_path / "www"
    www.mkdir()
    shutil.copy(DATA / "e2e" / "npr-world.xml", www / "npr.xml")
    (www / "page.html").write_text("<html><body>moved</body></html>", encoding="utf-8")
    with serve_directory(www) as server:
        config = tmp_path / "aggregator.yaml"
        config.write_text(
            f"database: sqlite:///{tmp_path / 'db.sqlite'}\n"
            "polling:\n  allow_networks: [127.0.0.1/32]\n"
            "sources:\n"
            f"  - name: npr\n    url: {server.url('npr.xml')}\n"
            f"  - name: gone\n    url: {server.url('gone.xml')}\n"
            f"  - name: html\n    url: {server.url('page.html')}\n",
            encoding="utf-8",
        )
        result = _cli("--config", str(config), "poll")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "gone  FAILED: HTTP 404 Not Found" in result.stdout
    assert "html  FAILED: not a feed" in result.stdout
    assert "3 sources: 1 ok, 0 not modified, 2 failed" in result.stdout

    table = _cli("--config", str(config), "sources")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == [
        "SOURCE",
        "LAST",
        "POLL",
        "STATUS",
        "HTTP",
        "ITEMS",
        "ERRORS",
        "NEXT",
        "POLL",
    ]
    npr = next(line for line in lines if line.startswith("npr "))
    assert " ok " in npr and " 200 " in npr
    assert any(line.strip() == "gone: HTTP 404 Not Found" for line in lines)

    as_json = _cli("--config", str(config), "sources", "--json")
    states = {s["name"]: s for s in json.loads(as_json.stdout)["sources"]}
    assert (states["npr"]["status"], states["npr"]["items"]) == ("ok", 10)
    assert (states["gone"]["status"], states["gone"]["http_status"]) == ("error", 404)
    assert states["html"]["last_error"].startswith("not a feed")


def test_migrate_creates_then_reports_up_to_date(tmp_path: Path) -> None:
    config = tmp_path / "aggregator.yaml"
    config.write_text(f"database: sqlite:///{tmp_path / 'db.sqlite'}\n", encoding="utf-8")
    first = _cli("--config", str(config), "migrate")
    assert first.returncode == 0, first.stderr
    assert "upgraded from empty" in first.stdout
    second = _cli("--config", str(config), "migrate")
    assert "up to date" in second.stdout


def test_unreachable_database_is_one_clear_line(tmp_path: Path) -> None:
    config = tmp_path / "aggregator.yaml"
    config.write_text(
        "database: postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2\n",
        encoding="utf-8",
    )
    result = _cli("--config", str(config), "poll")
    assert result.returncode == 1
    assert result.stderr.startswith("aggregator: cannot reach the database")
    assert "Traceback" not in result.stderr
    debugged = _cli("--config", str(config), "poll", "--debug")
    assert debugged.returncode == 1
    assert "Traceback" in debugged.stderr
    assert debugged.stderr.rstrip().splitlines()[-1].startswith("aggregator: cannot reach")


def test_a_port_in_use_is_one_clear_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "aggregator.yaml"
        config.write_text(
            f"database: sqlite:///{tmp_path / 'db.sqlite'}\nserver:\n  listen: 127.0.0.1:{port}\n",
            encoding="utf-8",
        )
        result = _cli("--config", str(config), "serve")
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "change server.listen" in result.stderr
    assert "Traceback" not in result.stderr


def test_series_suggest_prints_running_story_tags_as_yaml(tmp_path: Path) -> None:
    data = Path(__file__).parent / "data" / "series"
    config = tmp_path / "config.yaml"
    config.write_text(
        f"database: sqlite:///{tmp_path / 'a.db'}\n"
        f"sources:\n  - name: nyt\n    url: '{(data / 'nyt-world.xml').as_uri()}'\n",
        encoding="utf-8",
    )
    assert _cli("--config", str(config), "poll").returncode == 0
    result = _cli("--config", str(config), "series", "suggest", "--days", "36500")
    assert result.returncode == 0, result.stderr
    assert "russian-invasion-of-ukraine" in result.stdout
    assert (
        '      - {term: "Russian Invasion of Ukraine (2022)", domain: "http://www.nytimes.com'
        in (result.stdout)
    )
    assert "trump-donald-j" not in result.stdout
    bad = _cli("--config", str(config), "series", "suggest", "--days", "1000000")
    assert bad.returncode == 2 and "expected 1 to 36500 days" in bad.stderr


def test_series_commands_have_help() -> None:
    top = _cli("--help")
    assert "series" in top.stdout
    for args in (["series", "--help"], ["series", "suggest", "--help"]):
        result = _cli(*args)
        assert result.returncode == 0 and "--config" in result.stdout
    assert "--min-days" in _cli("series", "suggest", "--help").stdout


# --- import-opml ------------------------------------------------------------------------

OPML = DATA / "opml"


def _minimal_config(tmp_path: Path, sources: str) -> Path:
    config = tmp_path / "aggregator.yaml"
    config.write_text(f"database: sqlite:///{tmp_path / 'x.db'}\nsources:\n{sources}")
    return config


def test_import_opml_prints_sources_a_config_accepts(tmp_path: Path) -> None:
    import re

    from aggregator.settings import load_settings

    already = "  - {name: df, url: 'http://daringfireball.net/feeds/main'}\n"
    config = _minimal_config(tmp_path, already)
    result = _cli("--config", str(config), "import-opml", str(OPML / "SubsNoTitleAttributes.opml"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# 206 feeds from SubsNoTitleAttributes.opml (1 already")
    pasted = _minimal_config(tmp_path, already + result.stdout)
    settings = load_settings(pasted, environ={})
    by_url = {source.url: source for source in settings.sources}
    document = (OPML / "SubsNoTitleAttributes.opml").read_text(encoding="utf-8")
    assert set(by_url) == set(re.findall(r'xmlUrl="([^"]*)"', document))  # each feed, once
    assert by_url["http://corinnekrych.blogspot.com/feeds/posts/default"].title == "chat & code"
    # A reader's folders become tags: A List Apart is filed under "Programming".
    assert by_url["http://feeds.feedburner.com/alistapart/main"].tags == ("programming",)
    assert by_url["http://daringfireball.net/feeds/main"].name == "df"  # the config's own
    assert len({source.name for source in settings.sources}) == 207


def test_import_opml_refuses_what_is_not_opml_with_a_clear_line(tmp_path: Path) -> None:
    config = _minimal_config(tmp_path, "  - {name: a, url: 'https://a.example/feed'}\n")
    not_opml = tmp_path / "feed.xml"
    not_opml.write_text("<rss version='2.0'><channel/></rss>")
    result = _cli("--config", str(config), "import-opml", str(not_opml))
    assert result.returncode == 1
    assert "not an OPML document" in result.stderr and "Traceback" not in result.stderr
    missing = _cli("--config", str(config), "import-opml", str(tmp_path / "none.opml"))
    assert missing.returncode == 1 and "cannot read" in missing.stderr


def test_an_opml_entity_bomb_is_never_expanded() -> None:
    from aggregator.parse.opml import read_subscriptions

    lol = "".join(f'<!ENTITY l{n} "{f"&l{n - 1};" * 10}">' for n in range(1, 10))
    bomb = (
        f'<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY l0 "lol">{lol}]>'
        '<opml version="2.0"><body><outline text="&l9;" xmlUrl="https://a.example/f"/>'
        "</body></opml>"
    ).encode()
    try:
        subscriptions = read_subscriptions(bomb)
    except Exception as exc:  # refusing it is as good as not expanding it
        assert "OPML" in str(exc)
        return
    assert all(len(s.title) < 1000 for s in subscriptions)


def test_import_opml_describes_itself() -> None:
    result = _cli("import-opml", "--help")
    assert result.returncode == 0 and "OPML" in result.stdout
    assert "import-opml" in _cli("--help").stdout


def test_the_systemd_unit_runs_the_daemon_as_the_cli_understands_it() -> None:
    import configparser
    import shlex

    from aggregator.cli import build_parser

    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(REPO / "config" / "aggregator.service", encoding="utf-8")
    service = unit["Service"]
    for key in ("ExecStartPre", "ExecStart"):
        program, *arguments = shlex.split(service[key])
        assert program.endswith("/aggregator")
        build_parser().parse_args(arguments)  # exits (fails the test) on a bad option
    assert shlex.split(service["ExecStart"])[-1] == "run"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"  # what reload listens to
    assert (service["Restart"], service["User"]) == ("on-failure", "aggregator")
    assert service["NoNewPrivileges"] == "yes" and service["ProtectSystem"] == "strict"


def test_feeds_series_and_stories_list_what_the_demo_holds(tmp_path: Path) -> None:
    import json

    from tests.test_daemon import _demo_copy

    config = _demo_copy(tmp_path)
    polled = _cli("--config", str(config), "poll")
    assert polled.returncode == 0, polled.stderr

    feeds = _cli("--config", str(config), "feeds")
    assert feeds.returncode == 0, feeds.stderr
    header, *rows = feeds.stdout.splitlines()
    assert header.split()[:4] == ["FEED", "MERGE", "ENTRIES", "UPDATED"]
    assert any(row.split()[:3] == ["world", "story", "100+"] for row in rows), rows
    listed = json.loads(_cli("--config", str(config), "feeds", "--json").stdout)["feeds"]
    world = next(feed for feed in listed if feed["slug"] == "world")
    assert (world["entries"], world["more"]) == (100, True)

    series = _cli("--config", str(config), "series")
    assert series.returncode == 0, series.stderr
    assert series.stdout.splitlines()[0].split()[:3] == ["SERIES", "REPORTS", "STORIES"]
    as_json = json.loads(_cli("--config", str(config), "series", "--json").stdout)["series"]
    geneva = next(s for s in as_json if s["slug"] == "geneva-talks")
    assert geneva["items"] > 0 and geneva["outlets"]
    row = next(line for line in series.stdout.splitlines() if line.startswith("geneva-talks"))
    assert row.split()[1:3] == [str(geneva["items"]), str(geneva["stories"])]

    stories = json.loads(_cli("--config", str(config), "stories", "--json").stdout)["stories"]
    assert stories and all(story["outlets"] >= 2 for story in stories)
    table = _cli("--config", str(config), "stories", "--limit", "3").stdout.splitlines()
    assert len(table) == 4 and table[1].split()[0] == str(stories[0]["id"])


def test_add_finds_the_feed_behind_a_page_and_remove_takes_it_out(tmp_path: Path) -> None:
    www = tmp_path / "www"
    www.mkdir()
    shutil.copy(DATA / "e2e" / "npr-world.xml", www / "npr.xml")
    shutil.copy(DATA / "e2e" / "bbc-news-world.xml", www / "bbc.xml")
    (www / "news.html").write_text(
        "<html><head><title>NPR</title>"
        '<link rel="alternate" type="application/rss+xml" title="World" href="/npr.xml">'
        "</head><body>news</body></html>",
        encoding="utf-8",
    )
    (www / "plain.html").write_text("<html><body>no feed here</body></html>", encoding="utf-8")
    with serve_directory(www) as server:
        config = tmp_path / "aggregator.yaml"
        original = (
            "# My outlets. Keep this comment!\n"
            f"database: sqlite:///{tmp_path / 'db.sqlite'}\n"
            "polling:\n"
            "  allow_networks: [127.0.0.1/32]   # the feeds are served here\n"
            "sources:\n"
            "  # the BBC first\n"
            "  - name: bbc\n"
            f"    url: {server.url('bbc.xml')}\n"
        )
        config.write_text(original, encoding="utf-8")
        added = _cli("--config", str(config), "add", server.url("news.html"), "--tag", "us")
        assert added.returncode == 0, added.stderr
        assert f"links to the feed {server.url('npr.xml')}" in added.stdout
        edited = config.read_text(encoding="utf-8")
        assert edited.startswith(original)  # every line, comment and layout kept
        (name,) = re.findall(r"^  - name: (\S+)$", edited[len(original) :], re.M)
        assert f"    url: {server.url('npr.xml')}\n" in edited
        assert _cli("--config", str(config), "check").returncode == 0

        again = _cli("--config", str(config), "add", server.url("npr.xml"))
        assert again.returncode == 1 and "in the config already" in again.stderr
        nothing = _cli("--config", str(config), "add", server.url("plain.html"))
        assert nothing.returncode == 1
        assert "neither a feed nor a page that links to one" in nothing.stderr
        assert config.read_text(encoding="utf-8") == edited  # refused: left as it was

    removed = _cli("--config", str(config), "remove", name)
    assert removed.returncode == 0, removed.stderr
    assert "its stored items stay" in removed.stdout
    assert config.read_text(encoding="utf-8") == original
    missing = _cli("--config", str(config), "remove", "nope")
    assert missing.returncode == 1 and "no source named 'nope'" in missing.stderr
