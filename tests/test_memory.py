import sys

import pytest

from aggregator.memory import limit_malloc_arenas


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")
def test_malloc_arenas_are_capped_on_glibc() -> None:
    assert limit_malloc_arenas() is True
