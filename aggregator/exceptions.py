"""One error tree for the whole service.

    AggregatorError
     ├── ConfigError          the YAML file is wrong; carries file, line, key path
     ├── FetchError           a source could not be fetched; carries the source url
     │    ├── FetchTimeout
     │    ├── FetchTooLarge
     │    ├── FetchRefused     the SSRF guard refused the address
     │    └── HTTPStatusError
     │         └── SourceGone   410: the publisher says the feed is gone for good
     ├── ParseError           the bytes are not a feed we can read
     ├── StoreError           the database refused or is unreachable
     │    └── SchemaOutdated
     └── PublishError         a merged feed could not be rendered

Third-party exceptions are translated at the boundary of the stage that calls the
library (``raise ... from exc``). A failing *source* is reported as a value in its
poll result; these exceptions only travel inside a stage up to that point.
"""

from __future__ import annotations

from dataclasses import dataclass

from aggregator.types import NO_HINTS, PollHints


class AggregatorError(Exception):
    """Root of every error this package raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One thing wrong with a config file, located as precisely as we can."""

    file: str
    line: int | None
    key_path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        key = f" {self.key_path}:" if self.key_path else ""
        return f"{where}:{key} {self.message}"


class ConfigError(AggregatorError):
    """The config file cannot be used; ``problems`` lists every mistake found."""

    def __init__(self, problems: list[ConfigProblem] | tuple[ConfigProblem, ...]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class FetchError(AggregatorError):
    """A source could not be fetched."""

    def __init__(self, url: str, message: str) -> None:
        self.url = url
        self.message = message
        super().__init__(f"{url}: {message}")


class FetchTimeout(FetchError):
    """The source did not answer (or finish answering) in time."""


class FetchTooLarge(FetchError):
    """The source sent more than ``polling.max_bytes``."""


class FetchRefused(FetchError):
    """The source's address is one the SSRF guard does not connect to."""


class HTTPStatusError(FetchError):
    """The source answered with a status that carries no feed.

    ``hints`` carries what it said about when to come back (Retry-After on 429/503).
    """

    def __init__(
        self, url: str, status_code: int, message: str, hints: PollHints = NO_HINTS
    ) -> None:
        self.status_code = status_code
        self.hints = hints
        super().__init__(url, message)


class SourceGone(HTTPStatusError):
    """410 Gone: the publisher removed the feed for good."""


class ParseError(AggregatorError):
    """The fetched bytes are not a feed we can read."""


class ParseInterrupted(ParseError):
    """Parsing ended for a reason outside the document: not known to happen again with
    the same bytes, unlike any other ParseError, so the bytes are read again."""


class ParserDied(ParseInterrupted):
    """The parser's process ended on the document (killed, out of memory)."""


class ParseTimeout(ParseInterrupted):
    """The parser was stopped for running past its budget, which on a busy machine a
    feed that parses in a tenth of it can do."""


class StoreError(AggregatorError):
    """The database refused an operation or cannot be reached."""


class SchemaOutdated(StoreError):
    """The database schema is older than this version of aggregator."""


class PublishError(AggregatorError):
    """A merged feed could not be rendered."""
