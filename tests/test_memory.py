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
