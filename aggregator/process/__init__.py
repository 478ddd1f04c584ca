"""Pure decisions, no I/O: normalize and sanitize items, dedupe keys, series, next poll time."""
