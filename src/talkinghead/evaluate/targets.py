"""Issue 25's targets, read from one model's ``talkinghead evaluate`` reports against the baselines of the same reports.

A target is met or missed by the means of the report's rows (`metrics.report`): the model's row against the mesh
warp's, the "mesh warp + blur" row's and the fixed blend's, measured on the same videos and targets in the same run.
The checkpoint rule (`evaluate.checkpoint_choice`) refuses a candidate that misses a target its reference meets: a
target is never given up for a better score elsewhere.

| target | split | T | met when |
|---|---|---|---|
| ``ssim_over_mesh`` | random | 8 | SSIM ≥ the mesh warp's + 0.01 |
| ``ahead_of_blur_and_blend`` | random | 8 | SSIM above, L1 below, both the blur and the fixed-blend rows |
| ``pop_rate`` | random | 1, 8 | pop rate ≤ 2 % of frame pairs |
| ``teeth_shown`` | mouth-open | 1, 8 | teeth shown ≥ 0.5 (targets whose truth shows teeth) |
| ``teeth_invented`` | mouth-open | 1, 8 | teeth invented ≤ 0.2 (targets whose truth shows none) |
| ``mouth_fd`` | mouth-open | 1, 8 | mouth-crop FD ≤ 0.8 × the mesh warp's |
| ``mouth_sharpness`` | mouth-open | 1, 8 | mouth sharpness ≥ the mesh warp's |
| ``mouth_l1`` | mouth-open | 1, 8 | mouth L1 ≤ the mesh warp's |

What is not here: the paired-interval targets (T = 1 not behind the mesh warp) are the rule's own whole-frame guard,
and the discriminator AUC, ψ swap and speed targets come from `evaluate.learned_parts` and `benchmarks/`, not from
these reports.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

Means = Mapping[str, Mapping[str, "float | None"]]
"""method -> metric -> the row's mean, for one (split, T)."""

MESH, BLUR, BLEND = "mesh-warp", "mesh-warp+blur", "fixed-blend"
POP_RATE_LIMIT = 0.02
TEETH_SHOWN_FLOOR = 0.5
TEETH_INVENTED_LIMIT = 0.2
MOUTH_FD_RATIO = 0.8
SSIM_MARGIN = 0.01


@dataclass(frozen=True)
class Target:
    """One of issue 25's targets on one split and T. ``met(ours, rows)`` is None when a value it needs is missing."""

    name: str
    split: str
    shots: int
    met_when: str
    met: Callable[[Mapping[str, float | None], Means], bool | None]


def _get(values: Mapping[str, float | None], name: str) -> float | None:
    value = values.get(name)
    return None if value is None else float(value)


def _compare(check: Callable[..., bool], *values: float | None) -> bool | None:
    return None if any(v is None for v in values) else check(*values)


def _ssim_over_mesh(ours: Mapping, rows: Means) -> bool | None:
    return _compare(lambda a, m: a >= m + SSIM_MARGIN, _get(ours, "ssim"), _get(rows.get(MESH, {}), "ssim"))


def _ahead_of_blur_and_blend(ours: Mapping, rows: Means) -> bool | None:
    verdicts = []
    for baseline in (BLUR, BLEND):
        theirs = rows.get(baseline, {})
        verdicts.append(_compare(lambda a, b: a > b, _get(ours, "ssim"), _get(theirs, "ssim")))
        verdicts.append(_compare(lambda a, b: a < b, _get(ours, "l1"), _get(theirs, "l1")))
    return None if None in verdicts else all(verdicts)


def _against_mesh(metric: str, check: Callable[[float, float], bool]) -> Callable[[Mapping, Means], bool | None]:
    return lambda ours, rows: _compare(check, _get(ours, metric), _get(rows.get(MESH, {}), metric))


def _alone(metric: str, check: Callable[[float], bool]) -> Callable[[Mapping, Means], bool | None]:
    return lambda ours, rows: _compare(check, _get(ours, metric))


TARGETS: tuple[Target, ...] = (
    Target("ssim_over_mesh", "random", 8, f"SSIM >= mesh warp + {SSIM_MARGIN:g}", _ssim_over_mesh),
    Target("ahead_of_blur_and_blend", "random", 8, "SSIM above and L1 below the blur and fixed-blend rows",
           _ahead_of_blur_and_blend),
    *(Target("pop_rate", "random", t, f"pop rate <= {POP_RATE_LIMIT:g}",
             _alone("pop_rate", lambda v: v <= POP_RATE_LIMIT)) for t in (1, 8)),
    *(Target("teeth_shown", "mouth-open", t, f"teeth shown >= {TEETH_SHOWN_FLOOR:g}",
             _alone("teeth_shown", lambda v: v >= TEETH_SHOWN_FLOOR)) for t in (1, 8)),
    *(Target("teeth_invented", "mouth-open", t, f"teeth invented <= {TEETH_INVENTED_LIMIT:g}",
             _alone("teeth_invented", lambda v: v <= TEETH_INVENTED_LIMIT)) for t in (1, 8)),
    *(Target("mouth_fd", "mouth-open", t, f"mouth FD <= {MOUTH_FD_RATIO:g} x mesh warp",
             _against_mesh("fd_mouth", lambda a, m: a <= MOUTH_FD_RATIO * m)) for t in (1, 8)),
    *(Target("mouth_sharpness", "mouth-open", t, "mouth sharpness >= mesh warp",
             _against_mesh("mouth_sharpness", lambda a, m: a >= m)) for t in (1, 8)),
    *(Target("mouth_l1", "mouth-open", t, "mouth L1 <= mesh warp",
             _against_mesh("mouth_l1", lambda a, m: a <= m)) for t in (1, 8)),
)
"""Every target of the module docstring's table, one per (name, split, T)."""


def row_means(report: Mapping, shots: int) -> dict[str, dict[str, float | None]]:
    """method -> metric -> mean, from a ``report.json``'s rows at T = ``shots`` (self-reenactment rows only)."""
    means: dict[str, dict[str, float | None]] = {}
    for row in report["rows"]:
        if int(row["shots"]) != shots or row.get("protocol", "self") != "self":
            continue
        means[row["method"]] = {name: (value or {}).get("mean") for name, value in row["metrics"].items()}
    return means


def target_key(target: Target) -> str:
    return f"{target.name}@{target.split}/T={target.shots}"


def targets_met(reports_by_split: Mapping[str, Mapping], method: str) -> dict[str, bool | None]:
    """``"name@split/T=t"`` -> met (True), missed (False) or not measured (None: the split, T, row or metric is
    absent), for ``method``'s rows of the given reports (split -> ``report.json``)."""
    result: dict[str, bool | None] = {}
    for target in TARGETS:
        report = reports_by_split.get(target.split)
        rows = row_means(report, target.shots) if report is not None else {}
        ours = rows.get(method)
        result[target_key(target)] = None if ours is None else target.met(ours, rows)
    return result


__all__ = ["TARGETS", "Target", "row_means", "target_key", "targets_met"]
