"""Temporal stability: what a viewer sees between frames and a per-frame metric cannot.

A per-frame metric scores each output against its own ground truth, so an output that jumps between two plausible
pictures on consecutive frames scores as well as a steady one. The warp family does exactly that where the nearest
source frame changes: issue 24 measured, with T = 8 sources, switches on 16-37 % of consecutive frame pairs, and at
a switch the output changing 3.5-4.6x as much as the real video. Here consecutive frames are compared with each
other, and the output's change is set against the reference video's change over the same pair:

    change(a, b)  = mean |b - a| over pixels and channels, in grey levels (uint8, 0..255)
    pop           : change(out_t, out_t+1) > POP_FACTOR * change(ref_t, ref_t+1) + POP_MARGIN
    pop rate      = the share of consecutive pairs that pop
    excess change = mean over pairs of max(0, change(out) - change(ref)), grey levels
    change ratio  = sum of change(out) / sum of change(ref) (1: moves as much as the reference; < 1 steadier,
                    e.g. a method that does not follow the motion)

The reference is the ground truth in evaluation (a contiguous window of a test video, driven frame by frame as
`animate` does) and the driver's own face crop in `animate --stats`, where no ground truth exists. The margin keeps
sensor noise and compression from counting as pops on a still video.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

POP_FACTOR = 2.0
"""A pair pops when the output changes more than this many times the reference's change ..."""
POP_MARGIN = 2.0
"""... plus this many grey levels."""


def frame_change(previous: np.ndarray, current: np.ndarray) -> float:
    """Mean absolute difference of two uint8 frames of one shape, in grey levels (0..255)."""
    a, b = np.asarray(previous), np.asarray(current)
    if a.shape != b.shape:
        raise ValueError(f"frame_change: frames {a.shape} and {b.shape} differ; compare frames of one size")
    if a.dtype != np.uint8 or b.dtype != np.uint8:
        raise ValueError(f"frame_change: expected uint8 frames, got {a.dtype} and {b.dtype}")
    return float(np.mean(np.abs(b.astype(np.int16) - a.astype(np.int16))))


def is_pop(output_change: float, reference_change: float, factor: float = POP_FACTOR,
           margin: float = POP_MARGIN) -> bool:
    """Whether an output change is a pop against the reference's change over the same pair of frames."""
    return output_change > factor * reference_change + margin


def stability(output_changes: Sequence[float], reference_changes: Sequence[float], factor: float = POP_FACTOR,
              margin: float = POP_MARGIN) -> dict[str, float | int | None]:
    """``{"pop_rate", "excess_change", "change_ratio", "pairs"}`` from per-pair changes (equal lengths); the
    figures are None when there is no pair (a window of one frame)."""
    out = np.asarray(output_changes, dtype=np.float64)
    ref = np.asarray(reference_changes, dtype=np.float64)
    if out.shape != ref.shape or out.ndim != 1:
        raise ValueError(f"stability: {out.shape} output changes but {ref.shape} reference changes")
    if out.size == 0:
        return {"pop_rate": None, "excess_change": None, "change_ratio": None, "pairs": 0}
    pops = out > factor * ref + margin
    total = float(ref.sum())
    return {"pop_rate": float(pops.mean()), "excess_change": float(np.maximum(out - ref, 0.0).mean()),
            "change_ratio": float(out.sum() / total) if total > 0 else None, "pairs": int(out.size)}


def temporal_stability(outputs: Sequence[np.ndarray], references: Sequence[np.ndarray]) -> dict:
    """`stability` of a run of consecutive output frames against the reference frames at the same times."""
    if len(outputs) != len(references):
        raise ValueError(f"temporal_stability: {len(outputs)} output frames but {len(references)} references")
    output_changes = [frame_change(a, b) for a, b in zip(outputs[:-1], outputs[1:], strict=True)]
    reference_changes = [frame_change(a, b) for a, b in zip(references[:-1], references[1:], strict=True)]
    return stability(output_changes, reference_changes)


@dataclass
class PopCounter:
    """`temporal_stability` one frame at a time, for streams whose frames are not kept (``animate --stats``).

    ``add(output, reference)`` for each frame in order; ``reset()`` starts a new run (e.g. after frames without a
    reference), so no pair spans a gap. ``summary()`` is `stability` over every pair seen.
    """

    output_changes: list[float] = field(default_factory=list)
    reference_changes: list[float] = field(default_factory=list)
    _previous: tuple[np.ndarray, np.ndarray] | None = None

    def add(self, output: np.ndarray, reference: np.ndarray) -> None:
        if self._previous is not None:
            self.output_changes.append(frame_change(self._previous[0], output))
            self.reference_changes.append(frame_change(self._previous[1], reference))
        self._previous = (np.array(output, copy=True), np.array(reference, copy=True))

    def reset(self) -> None:
        self._previous = None

    def summary(self) -> dict:
        return stability(self.output_changes, self.reference_changes)


__all__ = ["POP_FACTOR", "POP_MARGIN", "PopCounter", "frame_change", "is_pop", "stability", "temporal_stability"]
