"""lrlab's own measurements, as data: which schedule won each measured comparison, at which peak LR, by how much.

`lrlab.suggest` reads its rules from `TABLES` and quotes them (`Table.cite`), so a suggestion names the table and
the numbers it stands on. Each `Table` is one comparison of BENCHMARKS.md: every schedule at its own best peak LR
(the adaptive grid of `lrlab compare`), mean and standard deviation of the final validation loss over paired seeds,
and the paired seed-to-seed noise. When BENCHMARKS.md gets a new table, add it here.
"""

from __future__ import annotations

from dataclasses import dataclass

from lrlab.errors import LrlabError


@dataclass(frozen=True, kw_only=True)
class Measured:
    """One schedule of a comparison, at its best peak LR.

    Args:
        schedule: the spec as `lrlab compare` ran it (lengths as fractions of the run).
        peak: its best peak LR on the grid.
        final: mean final validation loss over the seeds (nats/byte for LM tasks).
        std: standard deviation of `final` over the seeds.
    """

    schedule: str
    peak: float
    final: float
    std: float


@dataclass(frozen=True, kw_only=True)
class Table:
    """One measured comparison.

    Args:
        task, preset, optimizer: what was trained (`lrlab compare --task --preset --optimizers`).
        steps: optimizer updates per run.
        seeds: paired seeds per schedule.
        sigma: paired noise of one seed's final loss (a gap below it is not significant); None: not measured.
        grid: the peak LRs tried, lowest and highest.
        source: where the table is (BENCHMARKS.md section), as the suggestion quotes it.
        rows: the schedules, best first.
    """

    task: str
    preset: str
    optimizer: str
    steps: int
    seeds: int
    sigma: float | None
    grid: tuple[float, float]
    source: str
    rows: tuple[Measured, ...]

    @property
    def winner(self) -> Measured:
        return self.rows[0]

    def row(self, schedule: str) -> Measured:
        """The row of `schedule` (its spec text as measured)."""
        for r in self.rows:
            if r.schedule == schedule:
                return r
        raise LrlabError(f"schedule {schedule!r} is not in {self.source}; measured: "
                         f"{', '.join(r.schedule for r in self.rows)}")

    def cite(self, *schedules: str) -> str:
        """``"BENCHMARKS.md lm/small AdamW: WSD 1.465 vs warm-up+linear 1.497 (noise 0.014)"``, for `schedules`
        (default: the first two rows)."""
        rows = [self.row(s) for s in schedules] if schedules else list(self.rows[:2])
        parts = " vs ".join(f"{short(r.schedule)} {r.final:g} at {r.peak:g}" for r in rows)
        noise = f"noise {self.sigma:g}, " if self.sigma is not None else ""
        return f"{self.source}: {parts} ({noise}{self.seeds} seeds, {self.steps} updates)"


#: short names of the measured specs, for citations
SHORT = {
    "wsd(warmup=0.05, decay=0.2)": "WSD",
    "warmup(0.05) >> linear()": "warm-up+linear",
    "warmup(0.05) >> cosine()": "warm-up+cosine",
    "warmup(0.05) >> inverse_sqrt(50)": "warm-up+inverse-sqrt",
    "cosine_restarts(0.143, mult=2)": "cosine restarts",
    "warmup(0.05) >> constant()": "warm-up+constant",
}


def short(schedule: str) -> str:
    """The short name of a measured spec (the spec itself when it has none)."""
    return SHORT.get(schedule, schedule)


def _rows(*rows: tuple[str, float, float, float]) -> tuple[Measured, ...]:
    return tuple(Measured(schedule=s, peak=p, final=f, std=d) for s, p, f, d in rows)


_WSD, _LIN, _COS = "wsd(warmup=0.05, decay=0.2)", "warmup(0.05) >> linear()", "warmup(0.05) >> cosine()"
_ISQRT, _RESTARTS, _WCONST = "warmup(0.05) >> inverse_sqrt(50)", "cosine_restarts(0.143, mult=2)", \
    "warmup(0.05) >> constant()"

#: BENCHMARKS.md, measured 2026-12-01 on the 2-core CI VM, 1,000 updates
TABLES: tuple[Table, ...] = (
    Table(task="lm", preset="tiny", optimizer="adamw", steps=1000, seeds=2, sigma=0.043, grid=(1.5e-3, 2.4e-2),
          source="BENCHMARKS.md lm/tiny AdamW (default lrlab compare)",
          rows=_rows((_WSD, 6e-3, 1.845, 0.001), (_LIN, 6e-3, 1.917, 0.015), (_COS, 6e-3, 1.936, 0.012),
                     (_RESTARTS, 6e-3, 1.959, 0.007), ("constant()", 3e-3, 1.965, 0.010),
                     (_ISQRT, 6e-3, 1.980, 0.014), ("cosine()", 6e-3, 1.996, 0.043),
                     ("exponential(0.99540542)", 6e-3, 2.200, 0.068), ("step(0.34, factor=0.1)", 6e-3, 2.204, 0.129))),
    Table(task="lm", preset="small", optimizer="adamw", steps=1000, seeds=3, sigma=0.014, grid=(1.25e-3, 2e-2),
          source="BENCHMARKS.md lm/small AdamW",
          rows=_rows((_WSD, 5e-3, 1.465, 0.012), (_LIN, 1e-2, 1.497, 0.030), (_COS, 1e-2, 1.525, 0.030),
                     (_ISQRT, 1e-2, 1.578, 0.034), ("constant()", 2.5e-3, 1.583, 0.006),
                     (_RESTARTS, 2.5e-3, 1.651, 0.012), ("cosine()", 2.5e-3, 1.659, 0.015),
                     ("step(0.34, factor=0.1)", 2.5e-3, 1.841, 0.021),
                     ("exponential(0.99540542)", 2.5e-3, 1.983, 0.029))),
    Table(task="lm", preset="small", optimizer="sgd", steps=1000, seeds=3, sigma=0.025, grid=(0.05, 0.8),
          source="BENCHMARKS.md lm/small SGD",
          rows=_rows((_WSD, 0.4, 1.740, 0.011), (_LIN, 0.4, 1.828, 0.036), ("constant()", 0.4, 1.863, 0.010),
                     ("cosine()", 0.4, 1.871, 0.041), (_COS, 0.4, 1.891, 0.050), (_RESTARTS, 0.4, 1.892, 0.004),
                     (_ISQRT, 0.4, 1.914, 0.021), ("step(0.34, factor=0.1)", 0.4, 2.122, 0.027),
                     ("exponential(0.99540542)", 0.4, 2.126, 0.011))),
    Table(task="lm", preset="small", optimizer="schedulefree", steps=1000, seeds=3, sigma=0.025, grid=(5e-3, 2e-2),
          source="BENCHMARKS.md lm/small schedule-free AdamW", rows=_rows((_WCONST, 1e-2, 1.496, 0.008))),
    Table(task="vision", preset="small", optimizer="adamw", steps=1000, seeds=3, sigma=0.024,
          grid=(3.67e-4, 2.35e-2), source="BENCHMARKS.md vision/small AdamW",
          rows=_rows((_COS, 7.34e-4, 0.073, 0.019), (_RESTARTS, 7.34e-4, 0.077, 0.018), (_WSD, 2.93e-3, 0.081, 0.019),
                     (_LIN, 7.34e-4, 0.083, 0.014), ("cosine()", 7.34e-4, 0.087, 0.008),
                     ("step(0.34, factor=0.1)", 7.34e-4, 0.113, 0.016),
                     ("exponential(0.99540542)", 1.47e-3, 0.128, 0.024), (_ISQRT, 1.47e-3, 0.129, 0.050),
                     ("constant()", 2.93e-3, 0.181, 0.023))),
    Table(task="vision", preset="small", optimizer="sgd", steps=1000, seeds=3, sigma=0.147, grid=(0.01, 0.32),
          source="BENCHMARKS.md vision/small SGD",
          rows=_rows((_WSD, 0.08, 0.147, 0.022), ("constant()", 0.04, 0.249, 0.050), (_LIN, 0.08, 0.250, 0.107),
                     (_ISQRT, 0.16, 0.322, 0.057), ("cosine()", 0.08, 0.345, 0.119), (_RESTARTS, 0.08, 0.424, 0.134),
                     (_COS, 0.04, 0.615, 0.336), ("step(0.34, factor=0.1)", 0.04, 1.166, 0.215),
                     ("exponential(0.99540542)", 0.04, 1.168, 0.071))),
    Table(task="vision", preset="small", optimizer="schedulefree", steps=1000, seeds=3, sigma=None,
          grid=(1.5e-3, 1.2e-2), source="BENCHMARKS.md vision/small schedule-free AdamW",
          rows=_rows((_WCONST, 3e-3, 0.130, 0.036))),
)


def lookup(task: str, preset: str, optimizer: str) -> Table | None:
    """The table measured for exactly (`task`, `preset`, `optimizer`), or None."""
    for t in TABLES:
        if (t.task, t.preset, t.optimizer) == (task, preset, optimizer):
            return t
    return None


def tables_for(task: str, optimizer: str) -> tuple[Table, ...]:
    """Every table of `task` with `optimizer`, smallest preset first."""
    return tuple(t for t in TABLES if (t.task, t.optimizer) == (task, optimizer))
