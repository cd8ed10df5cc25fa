"""`lrlab.tune` on the Ray backend: a tiny tune on a local Ray (2 CPUs) gives the local backend's numbers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lrlab.tune import TuneConfig
from lrlab.tune.runner import run_tune

#: 40 updates, a 200-update budget: trunks and the branches from their checkpoints, 12 trials; the cost
#: is the trials' start-up, not their updates (tests/test_tune_cli.py's 100 / 500 takes 1.5x as long)
TINY: dict[str, Any] = {"task": "lm", "preset": "tiny", "horizon": 40, "budget": 200, "checkpoint_every": 10,
                        "eval_batches": 2}


def numbers(doc: dict[str, Any]) -> tuple[Any, ...]:
    """What deterministic training makes equal on any backend: the trials, their curves, the result."""
    trials = sorted((t["name"], t["resume_from"], t["curve"]["val_loss"]) for t in doc["trials"])
    r = doc["result"]
    return trials, r["schedule"], r["lr"], r["estimate"], r["measured"], doc["spent"]


@pytest.fixture
def local_ray() -> Iterator[Any]:
    ray = pytest.importorskip("ray")  # in the dev extra (lrlab[ray]), so CI runs this

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=80 * 1024 ** 2)
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_tune_on_ray_gives_the_local_numbers(local_ray: Any, tmp_path: Path) -> None:
    local, _ = run_tune(TuneConfig(**TINY), tmp_path / "local", workers=2)
    ray_doc, result = run_tune(TuneConfig(**TINY), tmp_path / "ray", workers=2, backend="ray")
    assert ray_doc["status"] == "complete" and ray_doc["execution"]["backend"] == "ray"
    assert local["execution"]["backend"] == "local"
    assert numbers(ray_doc) == numbers(local)
    assert result is not None and result.schedule == local["result"]["schedule"] and result.spent <= 200
    kinds = {t["kind"] for t in ray_doc["trials"]}
    assert {"trunk", "cooldown", "final"} <= kinds and any(t["resume_from"] for t in ray_doc["trials"])
