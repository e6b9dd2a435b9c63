"""What issue 25's inference parts cost: the smooth source rule and the mouth prior, per frame, in one run.

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python benchmarks/run.py --case source_blend

The shipped model's generator (warp-128), personalized feed-forward on 8 frames of one synthetic person, renders
the same 64 driver frames (one at a time, as `animate` does) under each way of running it: the nearest source alone
(the stop-23 rule), the smooth rule (`models.source_choice`), and the smooth rule with the synthesis prior
(`landmarks.mouth_prior`), and with the stretch prior added (`landmarks.stretch_prior`, ``model.stretch_limit`` 1.5)
or the lid prior (`landmarks.lid_prior`, ``model.lid_prior``; the shipped weights were trained with neither, so only
their cost is meaningful there), and with the prior's parts shown to the synthesis branch (``model.prior_input``:
the shipped weights widened with zero weights, `training.warm_start.widen_for_prior_input`, so the pixels are the
row before's and only the cost is new), and with the lid hole filled from around it (``model.prior_hole=lids``,
``model.prior_hole_fill=surround``: a separable blur per frame; the branch sees another input inside a lid hole,
so pixels may change where a lid is painted), and with the mouth's own shares (``model.mouth_blend_power`` 4,
`landmarks.mouth_region`: per-pixel shares, a polygon and a blur per frame; stop 37). Each
row gives the ms per frame of choosing the sources (`Avatar.warp_sources`: rule, mesh grids, prior) and of the whole
frame (sources + generator), best and median of 3 passes, and the output's largest difference from the nearest
rule's (how much the rule changes the pixels). Torch runs 1 intra-op thread.
"""

from __future__ import annotations

import dataclasses
import os
import time

import numpy as np
import torch

from benchmarks.cases import case

FRAMES = 64


def _avatar(model_changes: dict):
    from talkinghead.data.synthetic.identity import Identity
    from talkinghead.data.synthetic.motion import Motion
    from talkinghead.data.synthetic.render import render_frame
    from talkinghead.inference import Avatar, Source, TalkingHead

    head = TalkingHead.load(None)
    config = dataclasses.replace(head.config, model=dataclasses.replace(head.config.model, **model_changes))
    size = config.model.image_size
    person, motion = Identity.sample(3), Motion.sample(3, 8 + FRAMES)
    rendered = [render_frame(person, motion.frame(t), size) for t in range(8 + FRAMES)]
    frames = [image for image, _ in rendered]
    landmarks = np.stack([points for _, points in rendered]).astype(np.float32)
    base = head.personalize([Source(f"frame {t}", frames[t], frames[t], landmarks[t], (0.0, 0.0, float(size)))
                             for t in range(8)])  # feed-forward
    avatar = Avatar(head.generator, base.psi, base.source_landmarks, config, source_crops=base.source_crops)
    return avatar, landmarks[8:]


def _widened(generator, changes: dict):
    from talkinghead.models import build_generator
    from talkinghead.training.warm_start import widen_for_prior_input

    hole = {name: changes[name] for name in ("prior_hole", "prior_hole_fill") if name in changes}
    widened = build_generator(dataclasses.replace(generator.cfg, prior_input=True, **hole))
    tensors = widen_for_prior_input({f"generator.{k}": v for k, v in generator.state_dict().items()})
    widened.load_state_dict({name[len("generator."):]: tensor for name, tensor in tensors.items()})
    return widened.eval().to(memory_format=torch.channels_last)  # as Avatar keeps it


@case("source_blend")
def source_blend() -> dict:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rows, reference = {}, None
        for name, changes in (("nearest", {"source_blend": "nearest"}), ("smooth p=4", {"source_blend": "smooth"}),
                              ("smooth p=4 + mouth prior", {"source_blend": "smooth", "synthesis_prior": True}),
                              ("smooth p=4 + mouth and stretch prior",
                               {"source_blend": "smooth", "synthesis_prior": True, "stretch_limit": 1.5}),
                              ("smooth p=4 + mouth and lid prior",
                               {"source_blend": "smooth", "synthesis_prior": True, "lid_prior": True}),
                              ("smooth p=4 + mouth and lid prior, parts shown",
                               {"source_blend": "smooth", "synthesis_prior": True, "lid_prior": True,
                                "prior_input": True}),
                              ("smooth p=4 + mouth and lid prior, parts shown, lid hole filled",
                               {"source_blend": "smooth", "synthesis_prior": True, "lid_prior": True,
                                "prior_input": True, "prior_hole": "lids", "prior_hole_fill": "surround"}),
                              ("smooth p=4 + mouth prior + the mouth's own shares q=4",
                               {"source_blend": "smooth", "synthesis_prior": True, "mouth_blend_power": 4.0})):
            avatar, drivers = _avatar(changes)
            if changes.get("synthesis_prior"):  # the shipped generator was built without it: run it with it on
                avatar.generator.cfg = dataclasses.replace(avatar.generator.cfg, synthesis_prior=True)
            if changes.get("prior_input"):  # three more input channels, zero weights
                avatar.generator = _widened(avatar.generator, changes)
            passes_sources, passes_frames, outputs = [], [], []
            for _ in range(3):
                started = time.perf_counter()
                for points in drivers:
                    avatar.warp_sources(points[None])
                passes_sources.append((time.perf_counter() - started) / len(drivers) * 1e3)
                started = time.perf_counter()
                outputs = [avatar.render_batch(points[None])[0] for points in drivers]
                passes_frames.append((time.perf_counter() - started) / len(drivers) * 1e3)
            frames = np.stack(outputs).astype(np.int16)
            reference = frames if reference is None else reference
            rows[name] = {"sources_ms_best": round(min(passes_sources), 3),
                          "sources_ms_median": round(float(np.median(passes_sources)), 3),
                          "frame_ms_best": round(min(passes_frames), 3),
                          "frame_ms_median": round(float(np.median(passes_frames)), 3),
                          "max_grey_difference_from_nearest": int(np.abs(frames - reference).max()),
                          "mean_grey_difference_from_nearest": round(float(np.abs(frames - reference).mean()), 3)}
        return {"rows": rows, "frames": FRAMES, "torch_threads": 1, "load_average_1min": round(os.getloadavg()[0], 2)}
    finally:
        torch.set_num_threads(threads)
