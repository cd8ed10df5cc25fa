"""The Schedule base: BlockCache is exactly the vector path; binding; declared bounds."""

from __future__ import annotations

import numpy as np
import pytest

import lrlab
from lrlab.schedule import BlockCache


@pytest.mark.parametrize("spec", ["warmup(0.05) >> cosine(floor=0.1)", "cosine_restarts(0.1, mult=2)",
                                  "onecycle()", "wsd(warmup=0.1, decay=0.3)"])
def test_block_cache_equals_vector_path(spec: str) -> None:
    s = lrlab.parse(spec, total=3000)
    cache = BlockCache(s, block=256)
    t = np.arange(0, 3500, dtype=np.float64)
    assert [cache(int(x)) for x in t] == s.values(t).tolist()
    assert [cache(float(x)) for x in t[::-97]] == s.values(t[::-97]).tolist()  # going backwards refills blocks
    assert cache(12.25) == s(12.25)


def test_block_cache_rejects_bad_input() -> None:
    with pytest.raises(lrlab.ScheduleError, match="no total is known"):
        BlockCache(lrlab.parse("cosine()"))
    with pytest.raises(lrlab.ScheduleError, match="block must be >= 1"):
        BlockCache(lrlab.parse("cosine(10)"), block=0)
    with pytest.raises(lrlab.ScheduleError, match="clock t must be"):
        BlockCache(lrlab.parse("cosine(10)"))(-1)
