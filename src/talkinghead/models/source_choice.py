"""Which source frames render a target frame, and the share each gets (issue 25: no popping).

The warp generator mixes N source frames per target (``model.inference_sources``). Where its learned gate keeps
to the rule (gate = 1: nearly everywhere in a trained model), the rule's weights decide the pixels:

``nearest``  the nearest source alone (weight 1), the rule the warp family was trained with up to stop 23. When the
             nearest source changes between two driver frames, the whole face jumps to another frame's pixels:
             on held-out clips with T = 8 the nearest changed on 16-37 % of frame pairs and the output then moved
             3.5-4.6x as much as the real video (the pop rate of `talkinghead.metrics.temporal`).
``smooth``   inverse-distance weights that reach zero exactly where a source leaves the N nearest:

                 w_k ∝ max(0, (d_1 / d_k)^p − (d_1 / d_cut)^p),   k = 1..N,   Σ w_k = 1

             d_k the normalized landmark distance of the k-th nearest source, d_cut that of the (N+1)-th (none when
             there are at most N sources: the term is 0), p = ``model.source_blend_power``. Every weight is a
             continuous function of the distances, and the distances move continuously with the driver's
             landmarks, so the mix has no jumps: a source fades in from 0 when it enters the N nearest and fades
             out to 0 before it leaves. With one source far nearer than the others its weight is ~1 (the nearest
             rule); at a tie the two share the pixels. p trades sharpness (large p: one source most of the time)
             against smoothness; chosen on the validation people (README, model card).

Both rules are computed in numpy where the sources are chosen (inference, fine-tuning pairs, training episodes),
and the generator receives the weights with the sources (`WarpSources.weights`).
"""

from __future__ import annotations

import numpy as np

from talkinghead.config import SOURCE_BLENDS, SourceBlend

_TINY = 1e-6
"""Added to every distance: a source at distance 0 (the target's own landmarks) gets a finite ratio."""


def choose_sources(distances: np.ndarray, count: int, rule: SourceBlend = "nearest",
                   power: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """The ``count`` sources nearest to one target and their blend weights.

    ``distances`` [T] (normalized landmark distance of each source to the target) -> (indices [n] into the T
    sources, nearest first, n = min(count, T); weights float32 [n], summing to 1)."""
    distances = np.asarray(distances, dtype=np.float64).reshape(-1)
    if distances.size == 0:
        raise ValueError("choose_sources: no source frames to choose from")
    if not np.isfinite(distances).all():
        raise ValueError("choose_sources: a source distance is not finite (a source frame without landmarks?)")
    if count < 1:
        raise ValueError(f"choose_sources: count must be >= 1, got {count}")
    order = np.argsort(distances, kind="stable")
    chosen = order[:count]
    weights = np.zeros(chosen.size, dtype=np.float64)
    if rule == "nearest":
        weights[0] = 1.0
    elif rule == "smooth":
        if power <= 0:
            raise ValueError(f"model.source_blend_power must be > 0, got {power}")
        d = distances[chosen] + _TINY
        cut = (d[0] / (distances[order[count]] + _TINY)) ** power if distances.size > count else 0.0
        weights = np.maximum((d[0] / d) ** power - cut, 0.0)
        if weights.sum() <= 0:  # every chosen source ties with the next one: nothing to tell them apart
            weights = np.zeros(chosen.size)
            weights[0] = 1.0
    else:
        raise ValueError(f"model.source_blend must be one of {SOURCE_BLENDS}, got {rule!r}")
    return chosen, (weights / weights.sum()).astype(np.float32)


__all__ = ["SOURCE_BLENDS", "SourceBlend", "choose_sources"]
