"""The ``aggregator`` command line."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from aggregator import __version__, logs
from aggregator.clock import SystemClock
from aggregator.exceptions import AggregatorError, ConfigError, ParseError
from aggregator.memory import limit_malloc_arenas
from aggregator.settings import DEFAULT_CONFIG_PATH, Settings, load_settings
from aggregator.types import PollOutcome, SourceState

if TYPE_CHECKING:
    from aggregator.process.series_tags import SeriesSuggestion

log = logging.getLogger("aggregator")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="config file (default: $AGGREGATOR_CONFIG or config/aggregator.yaml)",
    )
    common.add_argument(
        "--log-level",
        default=argparse.SUPPRESS,
        choices=["debug", "info", "warning", "error"],
        help="log verbosity (default: info)",
    )
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="on an error, print the traceback too",
    )
    common.add_argument(
        "--log-format",
        default=argparse.SUPPRESS,
        choices=["text", "json"],
        help="log lines as text (default) or as one JSON object each, for a log pipeline",
    )
    parser = argparse.ArgumentParser(
        prog="aggregator",
        description="Poll many outlets' feeds, merge them, and republish merged feeds.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"aggregator {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("check", parents=[common], help="validate the config file and exit")
    run = commands.add_parser(
        "run", parents=[common], help="the daemon: poll every source on schedule and serve feeds"
    )
    run.add_argument(
        "--no-server", action="store_true", help="poll only; do not start the HTTP server"
    )
    commands.add_parser(
        "poll", parents=[common], help="poll every source once and print what each one gave"
    )
    commands.add_parser("serve", parents=[common], help="serve merged feeds without polling")
    commands.add_parser("migrate", parents=[common], help="create or upgrade the database schema")
    commands.add_parser(
        "reload",
        parents=[common],
        help="make the running daemon re-read its config (SIGHUP to the pid in pid_file)",
    )
    commands.add_parser(
        "regroup",
        parents=[common],
        help="decide every stored item's series again, after the series rules changed",
    )
    series = commands.add_parser("series", parents=[common], help="work with series")
    series.add_argument("--json", action="store_true", help="as JSON, like GET /series/")
    series_commands = series.add_subparsers(
        dest="series_command", metavar="ACTION", help="what to do (none: list the series)"
    )
    suggest = series_commands.add_parser(
        "suggest",
        parents=[common],
        help="list outlets' recurring tags that look like running stories, as YAML to paste",
    )
    suggest.add_argument(
        "--days",
        type=_days,
        default=30,
        help="read the items of this many days, 1 to 36500 (default 30)",
    )
    suggest.add_argument("--min-items", type=int, default=3, help="items a tag needs (default 3)")
    suggest.add_argument(
        "--min-days", type=int, default=2, help="distinct days a tag needs (default 2)"
    )
    prune = commands.add_parser(
        "prune",
        parents=[common],
        help="remove the items past their retention now (the daemon does it every hour)",
    )
    prune.add_argument("--dry-run", action="store_true", help="only report what would be removed")
    add = commands.add_parser(
        "add",
        parents=[common],
        help="add a source to the config: a feed's URL, or a page that links to its feed",
    )
    add.add_argument("url", help="the feed's URL, or a page's (its <link rel=alternate> is used)")
    add.add_argument("--name", help="the source's name (default: made from the feed's title)")
    add.add_argument("--title", help="the outlet's name as shown (default: the feed's title)")
    add.add_argument(
        "--tag", action="append", default=[], help="a tag for feeds[].tags (repeatable)"
    )
    remove = commands.add_parser(
        "remove", parents=[common], help="take a source out of the config (its items stay)"
    )
    remove.add_argument("name", help="the source's name, as `aggregator sources` lists it")
    feeds = commands.add_parser(
        "feeds", parents=[common], help="print every merged feed: its entries, when updated"
    )
    feeds.add_argument("--json", action="store_true", help="as JSON")
    stories = commands.add_parser(
        "stories", parents=[common], help="print the latest stories several outlets carried"
    )
    stories.add_argument("--json", action="store_true", help="as JSON")
    stories.add_argument(
        "--limit", type=int, default=20, help="how many stories, newest first (default 20)"
    )
    stories.add_argument(
        "--min-outlets", type=int, default=2, help="outlets a story needs (default 2)"
    )
    sources = commands.add_parser(
        "sources", parents=[common], help="print every source's polling state"
    )
    sources.add_argument("--json", action="store_true", help="as JSON, like GET /sources.json")
    export = commands.add_parser(
        "export",
        parents=[common],
        help="write every feed, the HTML index and the OPML as static files for a web server",
    )
    export.add_argument(
        "--out", type=Path, required=True, help="the directory to write (made if missing)"
    )
    imported = commands.add_parser(
        "import-opml",
        parents=[common],
        help="print a feed reader's OPML export as sources: YAML to paste into the config",
    )
    imported.add_argument("file", type=Path, help="the OPML file a feed reader exported")
    evaluate = commands.add_parser(
        "eval-grouping",
        parents=[common],
        help="score story assignment against a labelled CSV (UCI News Aggregator columns)",
    )
    evaluate.add_argument("file", type=Path, help="CSV: ID,TITLE,PUBLISHER,STORY,TIMESTAMP,...")
    evaluate.add_argument("--out", type=Path, help="write ID,predicted_story to this CSV")
    evaluate.add_argument(
        "--threshold", type=float, help="override grouping.threshold for this run"
    )
    return parser


def _days(text: str) -> int:
    days = int(text)
    if not 1 <= days <= 36_500:
        raise argparse.ArgumentTypeError(f"expected 1 to 36500 days, got {days}")
    return days


def main(argv: Sequence[str] | None = None) -> int:
    limit_malloc_arenas()
    args = build_parser().parse_args(argv)
    logs.configure(getattr(args, "log_level", "info"), getattr(args, "log_format", "text"))
    path = str(config_path(args))
    try:
        settings = load_settings(path)
        return COMMANDS[args.command](settings, args)
    except ConfigError as exc:
        print(f"config error in {path}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_CONFIG
    except AggregatorError as exc:
        if getattr(args, "debug", False):
            traceback.print_exc()
        print(f"aggregator: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_FAILURE
    except Exception as exc:  # a bug: say so in one line, the traceback on request
        if getattr(args, "debug", False):
            traceback.print_exc()
            return EXIT_FAILURE
        print(
            f"aggregator: internal error: {type(exc).__name__}: {exc} (a bug: run the "
            "command again with --debug for the traceback, and please report it)",
            file=sys.stderr,
        )
        return EXIT_FAILURE


def cmd_check(settings: Settings, _args: argparse.Namespace) -> int:
    print(
        f"config OK: {len(settings.sources)} sources, {len(settings.series)} series, "
        f"{len(settings.feeds)} merged feeds; database {settings.database}"
    )
    return EXIT_OK


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    from aggregator import daemon

    daemon.run(settings, config_path=config_path(args), with_server=not args.no_server)
    return EXIT_OK


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from aggregator import daemon
    from aggregator.publish.catalog import StoreCatalog
    from aggregator.store import Store

    with Store.open(settings.database) as store:
        catalog = StoreCatalog(settings, store)
        daemon.Reloader(config_path(args), settings, store, catalog=catalog).install()
        with daemon.pid_file(settings.pid_file):
            daemon.serve(settings, store, catalog=catalog)
    return EXIT_OK


def cmd_reload(settings: Settings, args: argparse.Namespace) -> int:
    from aggregator import daemon

    pid = daemon.signal_reload(settings.pid_file)
    print(
        f"asked the daemon (pid {pid}) to reload {config_path(args)}; its log says what "
        "changed, or why the new config was refused"
    )
    return EXIT_OK


def config_path(args: argparse.Namespace) -> Path:
    config = getattr(args, "config", None) or os.environ.get("AGGREGATOR_CONFIG")
    return Path(config or DEFAULT_CONFIG_PATH)


def cmd_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    from aggregator.store import create_store_engine, migrate

    engine = create_store_engine(settings.database)
    try:
        before, after = migrate(engine)
    finally:
        engine.dispose()
    if before == after:
        print(f"database schema is up to date (revision {after})")
    else:
        print(f"database schema upgraded from {before or 'empty'} to revision {after}")
    return EXIT_OK


def cmd_regroup(settings: Settings, _args: argparse.Namespace) -> int:
    from aggregator.series import refresh_auto_series, regroup
    from aggregator.store import Store

    with Store.open(settings.database) as store:
        auto = refresh_auto_series(store, settings, datetime.now(UTC))
        report = regroup(store, settings, auto)
    made = f" ({len(auto)} made from outlets' tags)" if auto else ""
    print(
        f"regrouped {report.items} items: {report.memberships} series memberships "
        f"in {report.series} of {len(settings.series) + len(auto)} series{made}"
    )
    return EXIT_OK


def cmd_prune(settings: Settings, args: argparse.Namespace) -> int:
    from aggregator.retention import describe_report, prune, retention_configured
    from aggregator.store import Store

    if not retention_configured(settings):
        print("no retention is configured: every item is kept (set retention: 90d, say)")
        return EXIT_OK
    with Store.open(settings.database) as store:
        report = prune(store, settings, datetime.now(UTC), dry_run=args.dry_run)
    print(describe_report(report, dry_run=args.dry_run))
    return EXIT_OK


def cmd_add(settings: Settings, args: argparse.Namespace) -> int:
    from aggregator.config_edit import add_source, discover
    from aggregator.pipeline import fetch_limits

    found = discover(args.url, fetch_limits(settings))
    if found.via_page:
        print(f"{found.via_page} links to the feed {found.url}")
    entry = add_source(
        config_path(args),
        url=found.url,
        name=args.name,
        title=args.title or found.title,
        tags=args.tag,
    )
    print(
        f"added source {entry['name']} ({entry.get('title', entry['name'])}): {found.url}\n"
        "run 'aggregator reload' for a running daemon to start polling it"
    )
    return EXIT_OK


def cmd_remove(settings: Settings, args: argparse.Namespace) -> int:
    from aggregator.config_edit import remove_source

    url = remove_source(config_path(args), args.name)
    print(
        f"removed source {args.name} ({url}); its stored items stay\n"
        "run 'aggregator reload' for a running daemon to stop polling it"
    )
    return EXIT_OK


def cmd_feeds(settings: Settings, args: argparse.Namespace) -> int:
    from aggregator.listings import feed_rows, format_feeds
    from aggregator.publish.catalog import StoreCatalog
    from aggregator.store import Store

    with Store.open(settings.database) as store:
        rows = feed_rows(StoreCatalog(settings, store))
    print(json.dumps({"feeds": rows}, indent=2) if args.json else format_feeds(rows))
    return EXIT_OK


def cmd_stories(settings: Settings, args: argparse.Namespace) -> int:
    from aggregator.listings import format_stories, story_rows
    from aggregator.store import Store

    with Store.open(settings.database) as store:
        found = store.recent_stories(limit=args.limit, min_outlets=args.min_outlets)
    print(
        json.dumps({"stories": story_rows(found)}, indent=2) if args.json else format_stories(found)
    )
    return EXIT_OK


def _list_series(settings: Settings, args: argparse.Namespace) -> int:
    from aggregator.listings import format_series, series_rows
    from aggregator.publish.catalog import StoreCatalog
    from aggregator.store import Store

    with Store.open(settings.database) as store:
        catalog = StoreCatalog(settings, store)
        infos = catalog.listing().series
    if args.json:
        print(json.dumps({"series": series_rows(infos, catalog.base_url)}, indent=2))
    else:
        print(format_series(infos))
    return EXIT_OK


def cmd_series(settings: Settings, args: argparse.Namespace) -> int:
    from aggregator.series import suggest_from_store
    from aggregator.store import Store

    if args.series_command is None:
        return _list_series(settings, args)

    with Store.open(settings.database) as store:
        suggestions, read = suggest_from_store(
            store,
            settings,
            since=datetime.now(UTC) - timedelta(days=args.days),
            min_items=args.min_items,
            min_days=args.min_days,
        )
    if not suggestions:
        print(
            f"no recurring tags that look like running stories in {read} "
            f"items of the last {args.days} days (try --days, --min-items, --min-days)"
        )
        return EXIT_OK
    print(format_suggestions(suggestions))
    print("\n# ready to paste under series:")
    print("\n".join(s.yaml() for s in suggestions))
    return EXIT_OK


def format_suggestions(suggestions: Sequence[SeriesSuggestion]) -> str:
    width = max(len(s.slug) for s in suggestions)
    lines = [f"{'series':<{width}}  items  days  first       last        outlets"]
    for s in suggestions:
        outlets = ", ".join(f"{name} {count}" for name, count in s.outlets)
        span = f"{s.first_seen}  {s.last_seen}"
        lines.append(f"{s.slug:<{width}}  {s.items:>5}  {s.days:>4}  {span}  {outlets}")
    return "\n".join(lines)


def cmd_poll(settings: Settings, _args: argparse.Namespace) -> int:
    from aggregator.pipeline import open_pipeline

    with open_pipeline(settings, once=True) as pipeline:
        if sys.stderr.isatty():  # a person watching: a progress bar
            from rich.console import Console

            from aggregator.progress import run_with_progress

            outcomes = run_with_progress(pipeline.poll_all, Console(stderr=True))
        else:  # a log: the plain line of each poll
            outcomes = pipeline.poll_all()
    print(format_poll_report(outcomes))
    return EXIT_FAILURE if any(o.status in ("error", "gone") for o in outcomes) else EXIT_OK


def format_poll_report(outcomes: Sequence[PollOutcome]) -> str:
    width = max((len(o.source) for o in outcomes), default=6)
    lines = []
    for o in outcomes:
        if o.status == "ok":
            what = f"ok            {o.items_seen:5d} items, {o.items_new} new"
        elif o.status == "not_modified":
            what = "not modified"
        elif o.status == "gone":
            what = f"GONE: {o.error}; no longer polled (give it a new url to poll it again)"
        else:
            what = f"FAILED: {o.error}"
        lines.append(f"{o.source:<{width}}  {what}")
    failed = sum(o.status in ("error", "gone") for o in outcomes)
    unchanged = sum(o.status == "not_modified" for o in outcomes)
    ok = len(outcomes) - failed - unchanged
    new = sum(o.items_new for o in outcomes)
    lines.append(
        f"{len(outcomes)} sources: {ok} ok, {unchanged} not modified, {failed} failed; "
        f"{new} new entries (an article several sources carry counts for each)"
    )
    return "\n".join(lines)


def cmd_sources(settings: Settings, args: argparse.Namespace) -> int:
    from aggregator.pipeline import source_definitions
    from aggregator.publish.catalog import StoreCatalog
    from aggregator.publish.status import source_status
    from aggregator.store import Store

    with Store.open(settings.database) as store:
        store.sync_sources(source_definitions(settings), SystemClock().now())
        states = StoreCatalog(settings, store).sources()
    if args.json:
        print(json.dumps({"sources": [source_status(s) for s in states]}, indent=2))
    else:
        print(format_source_table(states))
    return EXIT_OK


def format_source_table(states: Sequence[SourceState]) -> str:
    from aggregator.listings import table, when
    from aggregator.publish.status import status_word

    header = ("SOURCE", "LAST POLL", "STATUS", "HTTP", "ITEMS", "ERRORS", "NEXT POLL")
    rows = [
        (
            s.name,
            when(s.last_polled_at),
            status_word(s),
            str(s.last_http_status or "-"),
            str(s.item_count),
            str(s.consecutive_errors),
            "-" if s.gone else when(s.next_poll_at),
        )
        for s in states
    ]
    lines = table(header, rows).splitlines()
    lines += [f"  {s.name}: moved permanently to {s.fetch_url}" for s in states if s.fetch_url]
    lines += [f"  {s.name}: {s.last_error}" for s in states if s.last_error]
    return "\n".join(line.rstrip() for line in lines)


def cmd_eval_grouping(settings: Settings, args: argparse.Namespace) -> int:
    from aggregator.grouping_eval import assign_stories, read_labelled, score, write_predictions
    from aggregator.pipeline import grouping_rules

    rules = grouping_rules(settings)
    if args.threshold is not None:
        if not 0 < args.threshold <= 1:
            print("aggregator: --threshold must be above 0 and at most 1", file=sys.stderr)
            return EXIT_USAGE
        rules = replace(rules, threshold=args.threshold)
    headlines = read_labelled(args.file)
    predicted = assign_stories(headlines, rules)
    result = score({h.id: h.story for h in headlines}, predicted)
    print(
        f"{result.items} items, {result.gold_stories} labelled stories, "
        f"{result.predicted_stories} predicted (threshold {rules.threshold:g})"
    )
    print(
        f"B-cubed   precision {result.bcubed_precision:.3f}  recall "
        f"{result.bcubed_recall:.3f}  F1 {result.bcubed_f1:.3f}"
    )
    print(
        f"pairwise  precision {result.pairwise_precision:.3f}  recall {result.pairwise_recall:.3f}"
    )
    if args.out:
        write_predictions(args.out, ((h.id, predicted[h.id]) for h in headlines))
        print(f"predictions written to {args.out}")
    return 0


def cmd_export(settings: Settings, args: argparse.Namespace) -> int:
    from aggregator.publish.catalog import StoreCatalog
    from aggregator.publish.export import export_site
    from aggregator.store import Store

    with Store.open(settings.database) as store:
        catalog = StoreCatalog(settings, store)
        try:
            written = export_site(catalog, args.out, base_url=settings.server.public_url)
        except OSError as exc:
            print(f"aggregator: cannot write to {args.out}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_FAILURE
    print(f"wrote {len(written)} files to {args.out}, linked for {settings.server.public_url}/")
    return EXIT_OK


def cmd_import_opml(settings: Settings, args: argparse.Namespace) -> int:
    import yaml

    from aggregator.parse.opml import read_subscriptions

    try:
        document = args.file.read_bytes()
    except OSError as exc:
        print(f"aggregator: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILURE
    try:
        subscriptions = read_subscriptions(document)
    except ParseError as exc:
        print(f"aggregator: {args.file}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    configured = {source.url for source in settings.sources}
    names = {source.name for source in settings.sources}
    fresh = [s for s in subscriptions if s.url not in configured]
    sources = []
    for subscription in fresh:
        name, number = subscription.name, 1
        while name in names:  # a name the config already gives another source
            number += 1
            name = f"{subscription.name[:60]}-{number}"
        names.add(name)
        entry: dict[str, object] = {"name": name, "title": subscription.title}
        entry["url"] = subscription.url
        if subscription.tags:
            entry["tags"] = list(subscription.tags)
        sources.append(entry)
    skipped = len(subscriptions) - len(fresh)
    print(
        f"# {len(sources)} feeds from {args.file.name}"
        + (f" ({skipped} already in the config left out)" if skipped else "")
        + ": paste these lines under sources: in the config"
    )
    listed = yaml.safe_dump(sources, sort_keys=False, allow_unicode=True) if sources else ""
    print("".join(f"  {line}" for line in listed.splitlines(keepends=True)), end="")
    return EXIT_OK


COMMANDS = {
    "check": cmd_check,
    "run": cmd_run,
    "serve": cmd_serve,
    "migrate": cmd_migrate,
    "poll": cmd_poll,
    "regroup": cmd_regroup,
    "prune": cmd_prune,
    "feeds": cmd_feeds,
    "add": cmd_add,
    "remove": cmd_remove,
    "stories": cmd_stories,
    "reload": cmd_reload,
    "series": cmd_series,
    "sources": cmd_sources,
    "eval-grouping": cmd_eval_grouping,
    "import-opml": cmd_import_opml,
    "export": cmd_export,
}

if __name__ == "__main__":
    sys.exit(main())
