"""Fetch stage: bytes from HTTP(S) and file sources, with conditional GET and limits."""

from aggregator.fetch.fetcher import Fetcher, FetchLimits

__all__ = ["FetchLimits", "Fetcher"]
