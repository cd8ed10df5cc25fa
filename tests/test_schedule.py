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


BAD_CLOCKS = [("5", "got '5' (str)"), (None, "got None (NoneType)"), (True, "got True (bool)"),
              (-1, "got -1.0"), (float("nan"), "got nan"), (float("inf"), "got inf")]


@pytest.mark.parametrize(("t", "message"), BAD_CLOCKS, ids=[repr(t) for t, _ in BAD_CLOCKS])
def test_bad_clock_names_the_value(t: object, message: str) -> None:
    s = lrlab.parse("cosine(10)")
    with pytest.raises(lrlab.ScheduleError) as info:
        s(t)  # type: ignore[arg-type]
    assert str(info.value).startswith("clock t must be a finite number >= 0") and message in str(info.value)


@pytest.mark.parametrize("ts", [["5", "6"], np.array(["1"]), [True, False], [1, -2], [0, float("nan")]],
                         ids=["strings", "string-array", "bools", "negative", "nan"])
def test_bad_clock_arrays_are_refused(ts: object) -> None:
    with pytest.raises(lrlab.ScheduleError, match="clock t must be"):
        lrlab.parse("cosine(10)").values(ts)


def test_integer_and_empty_clock_arrays_are_fine() -> None:
    s = lrlab.parse("cosine(10)")
    assert s.values(np.arange(3, dtype=np.int32)).tolist() == s.values([0.0, 1.0, 2.0]).tolist()
    assert s.values([]).shape == (0,)
