import sys

import pytest

from aggregator.memory import limit_malloc_arenas


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")
def test_malloc_arenas_are_capped_on_glibc() -> None:
    assert limit_malloc_arenas() is True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_freed_memory_can_be_given_back() -> None:
    from aggregator.memory import release_free_memory

    block = [bytes(1000) for _ in range(20_000)]  # ~20 MB in small allocations
    del block
    assert release_free_memory() is True


def test_a_parse_worker_imports_only_what_parsing_and_normalizing_need() -> None:
    """Every module a parse worker imports is held by each worker (two of them beside
    the daemon): the story index's code, importlib.metadata (4 MB), the reading code's
    key (computed by the polling process, sent with each document) and rnc2rng (which
    lxml imports whenever it is installed: 10 MB) stay out."""
    import subprocess

    probe = (
        "import sys, aggregator.workers, aggregator.process.document\n"
        "print(' '.join(sorted(sys.modules)))"
    )
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", probe], check=True, capture_output=True, text=True
        ).stdout.split()
    )
    assert "aggregator.process.normalize" in loaded  # the probe imported what a worker does
    unwanted = {
        "aggregator.process.stories",
        "aggregator.grouping",
        "aggregator.store",
        "sqlalchemy",
        "importlib.metadata",
        "aggregator.reading_code",  # the key comes with each document
        "rnc2rng",
    }
    assert loaded & unwanted == set()
