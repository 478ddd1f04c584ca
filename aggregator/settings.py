"""YAML config -> validated, frozen settings. The only module that reads the config.

Every mistake is reported as a ``ConfigProblem`` naming the file, the line and the
key path, and all mistakes found are reported together in one ``ConfigError``.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from aggregator.exceptions import ConfigError, ConfigProblem
from aggregator.types import SERIES_STORY_SHARE, FeedMerge

DEFAULT_CONFIG_PATH = Path("config/aggregator.yaml")
SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]*$"

# --- value parsers -----------------------------------------------------------

_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_duration(value: object) -> timedelta:
    """'30s', '15m', '2h', '1d' (or a number of seconds) -> timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION_RE.match(value)):
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    else:
        raise ValueError(f"expected a duration such as 30s, 15m, 2h or 1d, got {value!r}")
    if seconds <= 0:
        raise ValueError(f"expected a duration greater than zero, got {value!r}")
    return timedelta(seconds=seconds)


def parse_size(value: object) -> int:
    """'10MB', '512KiB', or a number of bytes -> bytes."""
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    elif isinstance(value, str) and (match := _SIZE_RE.match(value)):
        unit = match.group(2).lower()
        if unit not in _SIZE_UNITS:
            raise ValueError(f"unknown size unit {match.group(2)!r}; use B, KB, MB, GB, KiB, MiB")
        size = int(float(match.group(1)) * _SIZE_UNITS[unit])
    else:
        raise ValueError(f"expected a size such as 10MB or 512KiB, got {value!r}")
    if size <= 0:
        raise ValueError(f"expected a size greater than zero, got {value!r}")
    return size


def plain_title(value: object) -> object:
    """Titles are published as text to every reader: markup in them is a mistake."""
    if isinstance(value, str) and _MARKUP_RE.search(value):
        raise ValueError(f"expected plain text without markup, got {value!r}")
    return value


_MARKUP_RE = re.compile(r"<[A-Za-z/!?]")

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
AUTO = "auto"


def parse_interval(value: object) -> timedelta | str:
    """A duration, or ``auto`` for an interval learnt from the source's rate of new items."""
    if isinstance(value, str) and value.strip().lower() == AUTO:
        return AUTO
    return parse_duration(value)


def parse_network(value: object) -> str:
    """A CIDR range such as 127.0.0.1/32 or fd00::/8, normalized."""
    try:
        return str(ipaddress.ip_network(str(value).strip(), strict=False))
    except ValueError:
        raise ValueError(
            f"expected an IP network such as 127.0.0.1/32 or 10.0.0.0/8, got {value!r}"
        ) from None


FOREVER: Literal["forever"] = "forever"


def parse_retention(value: object) -> timedelta | str:
    """How long items are kept: a duration, or ``forever``."""
    if isinstance(value, str) and value.strip().lower() == FOREVER:
        return FOREVER
    return parse_duration(value)


Interval = Annotated[timedelta | Literal["auto"], BeforeValidator(parse_interval)]
Retention = Annotated[timedelta | Literal["forever"], BeforeValidator(parse_retention)]
Network = Annotated[str, BeforeValidator(parse_network)]
PlainText = Annotated[str, BeforeValidator(plain_title)]
Size = Annotated[int, BeforeValidator(parse_size)]
Slug = Annotated[str, Field(pattern=SLUG_PATTERN, max_length=64)]


# --- the settings model ------------------------------------------------------


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class ServerSettings(_Frozen):
    listen: str = "127.0.0.1:8080"
    base_url: str | None = None
    websub_hub: str | None = None  # a WebSub hub that feeds name and that hears of changes
    static_dir: Path | None = None  # a static copy of every feed, kept in sync by the poller

    @property
    def host(self) -> str:
        return split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return split_listen(self.listen)[1]

    @property
    def public_url(self) -> str:
        if self.base_url:
            return self.base_url.rstrip("/")
        host = self.host
        return f"http://{'[' + host + ']' if ':' in host else host}:{self.port}"


class PollingSettings(_Frozen):
    interval: Interval = timedelta(minutes=15)
    min_interval: Duration = timedelta(minutes=1)
    max_interval: Duration = timedelta(days=1)
    jitter: float = Field(default=0.1, ge=0, le=0.5)
    timeout: Duration = timedelta(seconds=30)
    parse_timeout: Duration = timedelta(seconds=30)
    max_bytes: Size = 10 * 1000**2
    concurrency: int = Field(default=8, ge=1, le=256)
    per_host: int = Field(default=2, ge=1, le=64)
    # How long a claimed source is left to this process before another may poll it.
    lease: Duration = timedelta(minutes=5)
    contact: str | None = None
    allow_networks: tuple[Network, ...] = ()


class GroupingSettings(_Frozen):
    """How items are assigned to stories (see aggregator.process.stories)."""

    threshold: float = Field(default=0.13, gt=0, le=1)
    pair_threshold: float = Field(default=0.25, gt=0, le=1)
    unnamed_threshold: float = Field(default=0.18, gt=0, le=1)
    subject_threshold: float = Field(default=0.3, gt=0, le=1)
    merge_threshold: float = Field(default=0.3, gt=0, le=1)
    window: Duration = timedelta(hours=72)
    capital_boost: float = Field(default=1.0, ge=1, le=5)
    summary_weight: float = Field(default=0.4, ge=0, le=1)
    # The share of a story's reports that must be in a series for the whole story to be.
    series_story_share: float = Field(default=SERIES_STORY_SHARE, ge=0, le=1)
    duplicate_threshold: float = Field(default=0.75, gt=0, le=1)


class SourceSettings(_Frozen):
    name: Slug
    title: PlainText | None = None
    url: str
    interval: Interval | None = None
    tags: tuple[str, ...] = ()
    dedupe: bool = True  # false: the outlet's items are never grouped with others' reports
    retention: Retention | None = None  # None: the top-level retention
    # The separator of an outlet that packs several tags into one category.
    split_categories: str | None = Field(default=None, min_length=1)

    @property
    def display_title(self) -> str:
        return self.title or self.name


def parse_category_match(value: object) -> object:
    """A category rule: "Term" alone, or {term: ..., domain: pattern}."""
    return {"term": value} if isinstance(value, str) else value


def parse_regex(value: object) -> str:
    """A regular expression (Python syntax), checked to compile."""
    text = str(value)
    try:
        re.compile(text)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression {text!r}: {exc}") from None
    return text


class CategoryMatch(_Frozen):
    term: str = Field(min_length=1)
    # A glob over the category's domain (or scheme), "*" for any part: NYT's running
    # stories are "*/keywords/des", the Guardian's tags "https://www.theguardian.com/*".
    domain: str | None = None


class SeriesMatch(_Frozen):
    categories: tuple[Annotated[CategoryMatch, BeforeValidator(parse_category_match)], ...] = ()
    keywords: tuple[str, ...] = ()  # whole words or phrases, in the title or summary
    regex: tuple[Annotated[str, BeforeValidator(parse_regex)], ...] = ()  # over the title
    sources: tuple[str, ...] = ()  # only items these sources carry
    tags: tuple[str, ...] = ()  # only items sources with one of these tags carry
    exclude: tuple[str, ...] = ()  # words or phrases that keep an item out
    # What the signals must weigh: 2 for a category, a keyword in the title or a regex;
    # 1 for a keyword only the summary has.
    min_score: int = Field(default=2, ge=1)


class SeriesSettings(_Frozen):
    slug: Slug
    title: PlainText
    description: PlainText | None = None
    match: SeriesMatch


def parse_auto_series(value: object) -> object:
    """``auto: true`` alone, or the thresholds of ``aggregator series suggest``."""
    if isinstance(value, bool):
        return {"enabled": value}
    if isinstance(value, dict):
        return {"enabled": True, **value}
    return value


class AutoSeriesSettings(_Frozen):
    """Series made from outlets' tags that look like running stories."""

    enabled: bool = False
    days: int = Field(default=30, ge=1, le=3650)  # the items read to find them
    min_items: int = Field(default=3, ge=1)
    min_days: int = Field(default=2, ge=1)


class FeedSettings(_Frozen):
    slug: Slug
    title: PlainText
    description: PlainText | None = None
    sources: tuple[str, ...] | None = None
    tags: tuple[str, ...] | None = None
    series: tuple[str, ...] | None = None
    limit: int = Field(default=50, ge=1, le=1000)
    # story: one entry per story (every outlet's report listed in it); duplicates: one
    # entry per article (the same link from several outlets is still one entry); none:
    # one entry per outlet's copy.
    merge: FeedMerge = "story"


@dataclass(frozen=True, slots=True)
class _SourceIndex:
    sources: tuple[SourceSettings, ...]
    default_interval: Interval
    by_name: dict[str, SourceSettings]
    intervals: dict[str, timedelta | None]


class Settings(_Frozen):
    database: str = "sqlite:///aggregator.db"
    # Where `run` and `serve` write their process id, for `aggregator reload`.
    pid_file: Path = Path("aggregator.pid")
    # How long items are kept, by their date; a source's own retention overrides it.
    retention: Retention = FOREVER
    server: ServerSettings = ServerSettings()
    polling: PollingSettings = PollingSettings()
    grouping: GroupingSettings = GroupingSettings()
    sources: tuple[SourceSettings, ...] = ()
    series: tuple[SeriesSettings, ...] = ()  # declared; YAML: a list, or series.declared
    # YAML: series.auto, when series is a mapping.
    auto_series: Annotated[AutoSeriesSettings, BeforeValidator(parse_auto_series)] = (
        AutoSeriesSettings()
    )
    feeds: tuple[FeedSettings, ...] = ()

    # Sources by name, and their polling intervals (None: automatic), with what they
    # were made from: model_copy() keeps private attributes, so they are made again
    # whenever the sources tuple or the default interval is not the one indexed.
    _index: _SourceIndex | None = PrivateAttr(default=None)

    def _indexed(self) -> _SourceIndex:
        index = self._index
        if (
            index is None
            or index.sources is not self.sources
            or index.default_interval != self.polling.interval
        ):
            index = _SourceIndex(
                sources=self.sources,
                default_interval=self.polling.interval,
                by_name={s.name: s for s in self.sources},
                intervals={s.name: self.interval_for(s) for s in self.sources},
            )
            self._index = index
        return index

    def source(self, name: str) -> SourceSettings | None:
        return self._indexed().by_name.get(name)

    def intervals(self) -> Mapping[str, timedelta | None]:
        """Each source's polling interval by name (``interval_for``; None: automatic)."""
        return self._indexed().intervals

    def retention_for(self, source: SourceSettings) -> timedelta | None:
        """How long the source's items are kept; None: forever."""
        chosen = source.retention if source.retention is not None else self.retention
        return chosen if isinstance(chosen, timedelta) else None

    def interval_for(self, source: SourceSettings) -> timedelta | None:
        """The source's polling interval; None when it is automatic."""
        chosen = source.interval if source.interval is not None else self.polling.interval
        return chosen if isinstance(chosen, timedelta) else None

    def feed_source_filters(self, feed: FeedSettings) -> tuple[tuple[str, ...], ...]:
        """Each tuple names sources of which an item must have one; all tuples must hold.

        ``sources`` gives one tuple and ``tags`` another (the sources with one of the
        tags): different filters combine with AND, values inside one filter with OR.
        """
        filters = []
        if feed.sources is not None:
            filters.append(tuple(feed.sources))
        if feed.tags is not None:
            wanted = set(feed.tags)
            filters.append(tuple(s.name for s in self.sources if wanted & set(s.tags)))
        return tuple(filters)


def split_listen(listen: str) -> tuple[str, int]:
    """'127.0.0.1:8080' or '[::1]:8080' -> (host, port)."""
    match = re.fullmatch(r"\[([^\]]+)\]:(\d+)|([^:\[\]]+):(\d+)", listen.strip())
    if not match:
        raise ValueError(f"expected host:port such as 127.0.0.1:8080, got {listen!r}")
    host = match.group(1) or match.group(3)
    port = int(match.group(2) or match.group(4))
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be between 0 and 65535, got {port}")
    return host, port


# --- loading -----------------------------------------------------------------

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class _Document:
    data: Any
    lines: Mapping[KeyPath, int]


def load_settings(
    path: str | os.PathLike[str], environ: Mapping[str, str] | None = None
) -> Settings:
    """Read, expand and validate a config file; raise ConfigError listing every mistake."""
    config_path = Path(path)
    file = str(config_path)
    try:
        text = config_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            [ConfigProblem(file, None, "", "config file not found; pass --config FILE")]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigProblem(file, None, "", f"cannot read config: {exc}")]) from exc
    document = _read_yaml(text, file)
    env = os.environ if environ is None else environ
    problems: list[ConfigProblem] = []
    data = _expand_env(document.data, (), env, document.lines, file, problems)
    if problems:
        raise ConfigError(problems)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            [ConfigProblem(file, 1, "", "expected a mapping of settings at top level")]
        )
    data, lines = _series_section(data, document.lines, file)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_validation_problems(exc, lines, file)) from None
    problems = _cross_check(settings, lines, file)
    if problems:
        raise ConfigError(problems)
    return _resolve_paths(settings, config_path.resolve().parent)


_SERIES_KEYS = ("auto", "declared")


def _series_section(
    data: dict[str, Any], lines: Mapping[KeyPath, int], file: str
) -> tuple[dict[str, Any], Mapping[KeyPath, int]]:
    """``series:`` is a list of declared series, or a mapping of ``auto`` and
    ``declared``: the model reads the mapping as ``series`` and ``auto_series``, and
    mistakes inside it are located where the YAML has them."""
    section = data.get("series")
    if not isinstance(section, dict):
        return data, lines
    unknown = [key for key in section if key not in _SERIES_KEYS]
    if unknown:
        loc: KeyPath = ("series", unknown[0])
        raise ConfigError(
            [
                ConfigProblem(
                    file,
                    _line_for(loc, lines),
                    _dotted(loc),
                    f"unknown key {unknown[0]!r} (expected one of: {', '.join(_SERIES_KEYS)})",
                )
            ]
        )
    moved = {**data, "series": section.get("declared") or []}
    if "auto" in section:
        moved["auto_series"] = section["auto"]
    located = dict(lines)
    for path, line in lines.items():
        if path[:2] == ("series", "declared"):
            located[("series", *path[2:])] = line
        elif path[:2] == ("series", "auto"):
            located[("auto_series", *path[2:])] = line
    return moved, located


# libyaml's loader when PyYAML was built with it: the pure-Python one spends a second
# on a config of a thousand sources. Both report the marks used for file:line errors.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_yaml(text: str, file: str) -> _Document:
    loader = _Loader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else None
            raise ConfigError(
                [ConfigProblem(file, line, "", f"invalid YAML: {exc.problem or exc}")]
            ) from None
        except yaml.YAMLError as exc:
            raise ConfigError([ConfigProblem(file, None, "", f"invalid YAML: {exc}")]) from None
        if node is None:
            return _Document(None, {})
        lines: dict[KeyPath, int] = {}
        problems: list[ConfigProblem] = []
        data = _construct(loader, node, (), lines, file, problems)
        if problems:
            raise ConfigError(problems)
        return _Document(data, lines)
    finally:
        loader.dispose()


def _construct(
    loader: yaml.SafeLoader,
    node: yaml.Node,
    path: KeyPath,
    lines: dict[KeyPath, int],
    file: str,
    problems: list[ConfigProblem],
) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int):
                problems.append(
                    ConfigProblem(
                        file, key_node.start_mark.line + 1, _dotted(path), "keys must be text"
                    )
                )
                continue
            child = (*path, key)
            if key in result:
                first = lines.get(child)
                problems.append(
                    ConfigProblem(
                        file,
                        key_node.start_mark.line + 1,
                        _dotted(child),
                        f"duplicate key (first given on line {first})",
                    )
                )
                continue
            lines[child] = key_node.start_mark.line + 1
            result[key] = _construct(loader, value_node, child, lines, file, problems)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _construct(loader, item, (*path, index), lines, file, problems)
            for index, item in enumerate(node.value)
        ]
    return loader.construct_object(node, deep=True)


_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand_env(
    value: Any,
    path: KeyPath,
    env: Mapping[str, str],
    lines: Mapping[KeyPath, int],
    file: str,
    problems: list[ConfigProblem],
) -> Any:
    if isinstance(value, dict):
        return {k: _expand_env(v, (*path, k), env, lines, file, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, (*path, i), env, lines, file, problems) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        problems.append(
            ConfigProblem(
                file,
                lines.get(path),
                _dotted(path),
                f"environment variable {name} is not set "
                f"(write ${{{name}:-default}} for a default)",
            )
        )
        return ""

    return _ENV_RE.sub(substitute, value)


def _validation_problems(
    exc: ValidationError, lines: Mapping[KeyPath, int], file: str
) -> list[ConfigProblem]:
    problems = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        problems.append(
            ConfigProblem(file, _line_for(loc, lines), _dotted(loc), _describe(error, loc))
        )
    return problems


def _describe(error: Any, loc: KeyPath) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        hint = f"; expected one of: {', '.join(allowed)}" if allowed else ""
        return f"unknown key {loc[-1]!r}{hint}"
    if kind == "missing":
        return "required key is missing"
    if kind == "string_pattern_mismatch":
        return (
            "expected lower-case letters, digits and '-' (like 'middle-east'), "
            f"got {error['input']!r}"
        )
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _allowed_keys(loc: KeyPath) -> list[str]:
    model: type[BaseModel] | None = Settings
    for part in loc:
        if model is None or isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        model = _model_of(field.annotation) if field else None
    return list(model.model_fields) if model else []


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found:
            return found
    return None


def _line_for(loc: KeyPath, lines: Mapping[KeyPath, int]) -> int | None:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _shorter_than_window(retention: timedelta, window: timedelta) -> str:
    return (
        f"retention ({_duration(retention)}) must be at least twice grouping.window "
        f"({_duration(window)}): a story's reports must outlive the time in which later "
        "reports may still join it"
    )


def _duration(value: timedelta) -> str:
    return f"{value.total_seconds():g}s"


def _dotted(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _cross_check(
    settings: Settings, lines: Mapping[KeyPath, int], file: str
) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []

    def problem(loc: KeyPath, message: str) -> None:
        problems.append(ConfigProblem(file, _line_for(loc, lines), _dotted(loc), message))

    try:
        url = make_url(settings.database)
        if not url.drivername:
            raise ArgumentError("no driver")
    except ArgumentError:
        problem(
            ("database",),
            f"expected a database URL such as sqlite:///aggregator.db or "
            f"postgresql+psycopg://user@host/db, got {settings.database!r}",
        )
    try:
        split_listen(settings.server.listen)
    except ValueError as exc:
        problem(("server", "listen"), str(exc))
    if settings.polling.min_interval > settings.polling.max_interval:
        problem(("polling", "min_interval"), "min_interval is longer than max_interval")
    polling = settings.polling
    if polling.lease <= polling.timeout + polling.parse_timeout:
        problem(
            ("polling", "lease"),
            f"lease ({_duration(polling.lease)}) must be longer than timeout plus "
            f"parse_timeout ({_duration(polling.timeout + polling.parse_timeout)}), "
            "or another instance could poll a source while this one still is",
        )
    if settings.server.base_url and not _is_http_url(settings.server.base_url):
        problem(("server", "base_url"), "expected an http:// or https:// URL")
    if settings.server.websub_hub and not _is_http_url(settings.server.websub_hub):
        problem(("server", "websub_hub"), "expected the hub's http:// or https:// URL")

    # An item may join a story up to a window after its last report, and is compared
    # with reports up to a window older than itself: both must still be stored.
    window = 2 * settings.grouping.window
    if isinstance(settings.retention, timedelta) and settings.retention < window:
        problem(("retention",), _shorter_than_window(settings.retention, window))
    source_names: dict[str, int] = {}
    all_tags: set[str] = set()
    for index, source in enumerate(settings.sources):
        if isinstance(source.retention, timedelta) and source.retention < window:
            problem(("sources", index, "retention"), _shorter_than_window(source.retention, window))
        if source.name in source_names:
            problem(
                ("sources", index, "name"),
                f"duplicate source name {source.name!r} "
                f"(also sources[{source_names[source.name]}])",
            )
        source_names.setdefault(source.name, index)
        all_tags.update(source.tags)
        url_problem = _source_url_problem(source.url)
        if url_problem:
            problem(("sources", index, "url"), url_problem)

    series_slugs: dict[str, int] = {}
    for index, series in enumerate(settings.series):
        if series.slug in series_slugs:
            problem(("series", index, "slug"), f"duplicate series slug {series.slug!r}")
        series_slugs.setdefault(series.slug, index)
        match = series.match
        if not (match.categories or match.keywords or match.regex):
            problem(
                ("series", index, "match"), "give at least one of categories, keywords or regex"
            )
        most = 2 * (len(match.categories) + len(match.keywords) + len(match.regex))
        if most and match.min_score > most:
            problem(
                ("series", index, "match", "min_score"),
                f"min_score {match.min_score} is more than the given signals can weigh ({most})",
            )
        for i, name in enumerate(match.sources):
            if name not in source_names:
                problem(("series", index, "match", "sources", i), f"unknown source {name!r}")
        for i, tag in enumerate(match.tags):
            if tag not in all_tags:
                problem(("series", index, "match", "tags", i), f"no source has the tag {tag!r}")

    feed_slugs: dict[str, int] = {}
    for index, feed in enumerate(settings.feeds):
        if feed.slug in feed_slugs:
            problem(("feeds", index, "slug"), f"duplicate feed slug {feed.slug!r}")
        feed_slugs.setdefault(feed.slug, index)
        for i, name in enumerate(feed.sources or ()):
            if name not in source_names:
                problem(("feeds", index, "sources", i), f"unknown source {name!r}")
        for i, slug in enumerate(feed.series or ()):
            if slug not in series_slugs:
                problem(("feeds", index, "series", i), f"unknown series {slug!r}")
        for i, tag in enumerate(feed.tags or ()):
            if tag not in all_tags:
                problem(("feeds", index, "tags", i), f"no source has the tag {tag!r}")
    return problems


def _is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _source_url_problem(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        try:
            _ = parts.port
        except ValueError:
            return f"invalid port in URL {url!r}"
        return None if parts.hostname else f"URL {url!r} has no host"
    if parts.scheme == "file":
        return None if (parts.path or parts.netloc) else f"file URL {url!r} has no path"
    return f"expected an http://, https:// or file: URL, got {url!r}"


def _resolve_paths(settings: Settings, base_dir: Path) -> Settings:
    """Make relative SQLite paths, file: sources and the static directory relative to
    the config file."""
    url = make_url(settings.database)
    database = settings.database
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        db_path = Path(url.database)
        if not db_path.is_absolute() and not url.database.startswith("file:"):
            database = url.set(database=str((base_dir / db_path).resolve())).render_as_string(
                hide_password=False
            )
    sources = tuple(
        s.model_copy(update={"url": resolve_file_url(s.url, base_dir)}) for s in settings.sources
    )
    server = settings.server
    if server.static_dir is not None and not server.static_dir.is_absolute():
        server = server.model_copy(update={"static_dir": (base_dir / server.static_dir).resolve()})
    pid_file = (
        settings.pid_file if settings.pid_file.is_absolute() else base_dir / settings.pid_file
    )
    return settings.model_copy(
        update={"database": database, "sources": sources, "server": server, "pid_file": pid_file}
    )


# What a running process cannot take up from a reloaded config: its database, its HTTP
# listener and what it built from them, its number of polling threads and parse workers.
RESTART_ONLY = ("database", "pid_file", "server", "polling.concurrency", "polling.parse_timeout")


def live_changes(running: Settings, reloaded: Settings) -> tuple[Settings, list[str]]:
    """The reloaded settings as a running process applies them, and the keys that
    changed but wait for a restart (kept as they run)."""
    waiting: list[str] = []
    for key in RESTART_ONLY:
        section, _, name = key.partition(".")
        old, new = getattr(running, section), getattr(reloaded, section)
        if name:
            if getattr(old, name) != getattr(new, name):
                waiting.append(key)
                new = new.model_copy(update={name: getattr(old, name)})
        elif old != new:
            waiting.append(key)
            new = old
        reloaded = reloaded.model_copy(update={section: new})
    return reloaded, waiting


def resolve_file_url(url: str, base_dir: Path) -> str:
    """``file:relative/path`` -> ``file:///abs/path``; other URLs unchanged."""
    parts = urlsplit(url)
    if parts.scheme != "file":
        return url
    if parts.netloc and parts.netloc != "localhost":
        # file://dir/x.xml: the user meant a relative path, not a host.
        relative = parts.netloc + parts.path
        return (base_dir / relative).resolve().as_uri()
    if parts.path.startswith("/"):
        return url
    return (base_dir / parts.path).resolve().as_uri()
