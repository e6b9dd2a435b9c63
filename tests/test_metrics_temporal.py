"""Temporal stability (issue 24): the pop rate and excess change see what per-frame metrics cannot."""

from __future__ import annotations

import numpy as np
import pytest

from talkinghead.metrics.temporal import PopCounter, frame_change, is_pop, stability, temporal_stability


def flat(value: int, size: int = 8) -> np.ndarray:
    return np.full((size, size, 3), value, np.uint8)


def test_frame_change_is_the_mean_absolute_difference_in_grey_levels():
    a, b = flat(10), flat(10)
    b[:4] = 30  # half the pixels change by 20
    assert frame_change(a, b) == pytest.approx(10.0)
    assert frame_change(b, a) == pytest.approx(10.0)
    assert frame_change(flat(200), flat(0)) == pytest.approx(200.0)  # no uint8 wrap-around
    with pytest.raises(ValueError, match="differ"):
        frame_change(flat(0, 8), flat(0, 4))


def test_a_pop_is_more_than_twice_the_reference_change_plus_two_grey_levels():
    assert not is_pop(2.0, 0.0) and is_pop(2.01, 0.0)  # a still video: only the margin
    assert not is_pop(10.0, 4.0) and is_pop(10.01, 4.0)


def test_a_steady_output_that_follows_the_truth_does_not_pop_and_a_jumping_one_does():
    truth = [flat(100 + t) for t in range(10)]  # the real video drifts by 1 grey level a frame
    follows = [flat(101 + t) for t in range(10)]  # off by one everywhere, but it moves as the truth does
    jumps = [flat(100 + t + (12 if t in (4, 5) else 0)) for t in range(10)]  # a source switch and back
    steady = temporal_stability(follows, truth)
    assert steady == {"pop_rate": 0.0, "excess_change": 0.0, "change_ratio": pytest.approx(1.0), "pairs": 9}
    popping = temporal_stability(jumps, truth)
    assert popping["pop_rate"] == pytest.approx(2 / 9)  # 3->4 and 5->6 pop; 4->5 moves with the truth
    assert popping["excess_change"] == pytest.approx((12 + 10) / 9)  # changes of 13 and 11 where the truth's is 1
    assert popping["change_ratio"] == pytest.approx((7 + 13 + 11) / 9)


def test_a_frozen_output_has_a_change_ratio_below_one_and_no_pops():
    truth = [flat(100 + 3 * t) for t in range(5)]
    frozen = [flat(100)] * 5
    result = temporal_stability(frozen, truth)
    assert result["pop_rate"] == 0.0 and result["excess_change"] == 0.0 and result["change_ratio"] == 0.0


def test_no_pairs_gives_no_figures_and_lengths_must_match():
    assert stability([], []) == {"pop_rate": None, "excess_change": None, "change_ratio": None, "pairs": 0}
    with pytest.raises(ValueError):
        temporal_stability([flat(0)] * 3, [flat(0)] * 2)


def test_the_streaming_counter_equals_the_batch_figures_and_reset_breaks_pairs():
    rng = np.random.default_rng(0)
    outputs = [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(6)]
    truth = [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(6)]
    counter = PopCounter()
    for output, reference in zip(outputs, truth, strict=True):
        counter.add(output, reference)
    assert counter.summary() == pytest.approx(temporal_stability(outputs, truth))
    gapped = PopCounter()
    for i, (output, reference) in enumerate(zip(outputs, truth, strict=True)):
        if i == 3:
            gapped.reset()
        gapped.add(output, reference)
    assert gapped.summary()["pairs"] == 4  # 0-1, 1-2, 3-4, 4-5: nothing across the gap
