"""What lip normalization costs per driver frame, against the plain relative rule, in one run.

    python benchmarks/run.py --case lip_normalization

Retargeting 256 driver frames (a synthetic talker) onto an open-mouth source in relative mode, one frame at a time as
`animate` does: the plain rule and lip normalization (`landmarks.lip_normalization`, the mouths closed once when the
`Retargeter` is built). Per rule: µs per frame, best and median of 5 passes, the one-time set-up, and the mean
mouth openness of the retargeted frames against the driver's (normalization should follow the driver's).
"""

from __future__ import annotations

import os
import time

import numpy as np

from benchmarks.cases import case

FRAMES = 256


@case("lip_normalization")
def lip_normalization() -> dict:
    from talkinghead.data.synthetic.identity import Identity
    from talkinghead.data.synthetic.motion import Motion
    from talkinghead.data.synthetic.render import render_frame
    from talkinghead.landmarks.geometry import open_mouth
    from talkinghead.landmarks.retarget import Retargeter
    from talkinghead.metrics.mouth import mouth_openness

    person, motion = Identity.sample(5), Motion.sample(5, FRAMES)
    driver = np.stack([render_frame(person, motion.frame(t), 128)[1] for t in range(FRAMES)]).astype(np.float32)
    source = open_mouth(driver[0], by=0.3)  # the portrait caught laughing
    rows = {}
    for name, normalize in (("plain", False), ("lip normalization", True)):
        started = time.perf_counter()
        retargeter = Retargeter(source, driver[0], "relative", normalize)
        setup_us = (time.perf_counter() - started) * 1e6
        passes, frames = [], []
        for _ in range(5):
            started = time.perf_counter()
            frames = [retargeter(points) for points in driver]
            passes.append((time.perf_counter() - started) / FRAMES * 1e6)
        rows[name] = {"us_per_frame_best": round(min(passes), 2),
                      "us_per_frame_median": round(float(np.median(passes)), 2), "setup_us": round(setup_us, 1),
                      "mean_openness": round(float(np.mean(mouth_openness(np.stack(frames)))), 4)}
    return {"rows": rows, "driver_mean_openness": round(float(np.mean(mouth_openness(driver))), 4),
            "source_openness": round(float(mouth_openness(source)), 4), "frames": FRAMES,
            "load_average_1min": round(os.getloadavg()[0], 2)}
