"""aggregator: poll many outlets' feeds, merge what they say, republish it."""

__version__ = "0.1.0"
