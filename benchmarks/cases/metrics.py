"""Per-frame cost of the evaluation metrics and baselines at 128x128, next to reference figures from the same run.

References: the small-128 generator's forward pass for one frame (what the metrics must stay small next to; only
when the models package is importable), and a 128x128 OpenCV Gaussian blur (a fixed unit of CPU work).
The CSIM figure is dlib's HOG search + 5-point alignment + 128-d descriptor for one output frame (the ground
truth's descriptor is cached, so an evaluated frame costs one). Uses a VoxCeleb2 face crop from ../shared/data when
present, else a synthetic image (CSIM then reports no face).
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

SHARED_FRAME = (Path(__file__).resolve().parents[2].parent / "shared" / "data" / "landmarks"
                / "voxceleb2_zakharov_sketches" / "01dfn2spqyE_0_frame.png")


def _per_call_ms(function, repeats: int = 10) -> float:
    function()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - start) / repeats * 1000.0


def _face_128() -> tuple[np.ndarray, str]:
    if SHARED_FRAME.is_file():
        image = cv2.cvtColor(cv2.imread(str(SHARED_FRAME)), cv2.COLOR_BGR2RGB)
        return cv2.resize(image, (128, 128), interpolation=cv2.INTER_AREA), "voxceleb2 crop (shared data)"
    rng = np.random.default_rng(0)
    return cv2.GaussianBlur(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8), (5, 5), 0), "synthetic noise"


def _generator_ms() -> float | None:
    try:
        import torch

        from talkinghead.config import preset
        from talkinghead.models import Generator

        generator = Generator(preset("small-128").model).eval()
        landmark_image = torch.zeros(1, 3, 128, 128)
        psi = torch.zeros(1, generator.num_adain_params)
        with torch.no_grad():
            return _per_call_ms(lambda: generator(landmark_image, psi), repeats=3)
    except Exception:  # the models package may not be there yet; the case still reports the metric costs
        return None


def case_metrics_per_frame_128() -> dict:
    from talkinghead.metrics.baselines import copy_source, fixed_blend, mesh_warp_blur, mesh_warp_image
    from talkinghead.metrics.eyes import eye_metrics, relative_eye_openness
    from talkinghead.metrics.identity import DlibIdentity
    from talkinghead.metrics.image import l1, psnr, ssim
    from talkinghead.metrics.landmark_distance import landmark_distance
    from talkinghead.metrics.mouth import mouth_crop, mouth_metrics
    from talkinghead.metrics.temporal import frame_change

    face, image_source = _face_128()
    rng = np.random.default_rng(1)
    output = np.clip(face.astype(int) + rng.normal(0, 8, face.shape), 0, 255).astype(np.uint8)
    identity = DlibIdentity()
    found = identity.descriptor(face) is not None
    landmarks = np.stack([64 + 40 * np.cos(np.linspace(0, 6.28, 68)), 64 + 40 * np.sin(np.linspace(0, 6.28, 68))],
                         1).astype(np.float32)
    landmarks[20:40] *= 0.6
    landmarks[20:40] += 25
    moved = landmarks + rng.normal(0, 1.5, landmarks.shape).astype(np.float32)
    sources = np.stack([face] * 8)
    source_landmarks = np.stack([landmarks + rng.normal(0, 2, landmarks.shape) for _ in range(8)]).astype(np.float32)
    figures = {
        "ssim_ms": _per_call_ms(lambda: ssim(output, face), 20),
        "psnr_l1_ms": _per_call_ms(lambda: (psnr(output, face), l1(output, face)), 20),
        "csim_descriptor_ms": _per_call_ms(lambda: identity.descriptor(output), 5),
        "akd_ms": _per_call_ms(lambda: landmark_distance(moved[None], landmarks[None]), 20),
        "mesh_warp_ms": _per_call_ms(lambda: mesh_warp_image(face, landmarks, moved), 10),
        "copy_source_ms": _per_call_ms(lambda: copy_source(sources, source_landmarks, moved), 20),
        # issue 24: the smoothing baselines, the mouth region and the temporal figures (per frame)
        "mesh_warp_blur_ms": _per_call_ms(lambda: mesh_warp_blur(sources, source_landmarks, moved), 10),
        "fixed_blend_ms": _per_call_ms(lambda: fixed_blend(sources, source_landmarks, moved), 10),
        "mouth_metrics_ms": _per_call_ms(lambda: mouth_metrics(output, face, landmarks), 20),
        "mouth_crop_ms": _per_call_ms(lambda: mouth_crop(output, landmarks), 20),
        # stop 32: the eye region (every split) and the blink test of the eyes-closed split (per video of 300 frames)
        "eye_metrics_ms": _per_call_ms(lambda: eye_metrics(output, face, landmarks), 20),
        "eye_openness_300_frames_ms": _per_call_ms(lambda: relative_eye_openness(np.stack([landmarks] * 300)), 20),
        "frame_change_ms": _per_call_ms(lambda: frame_change(output, face), 50),
    }
    reference = {"reference_gaussian_blur_128_ms": _per_call_ms(lambda: cv2.GaussianBlur(face, (11, 11), 1.5), 50),
                 "reference_generator_small128_forward_ms": _generator_ms()}
    return {"case": "metrics_per_frame_128", "image": image_source, "face_found": found, **figures, **reference}


if __name__ == "__main__":
    import json

    print(json.dumps(case_metrics_per_frame_128()))
