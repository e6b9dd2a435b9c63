"""The default landmark backend: dlib's HOG face detector + its 68-point shape predictor, fully offline.

The predictor file ``shape_predictor_68_face_landmarks.dat`` ships in the ``face-recognition-models``
package; it is located by path (that package's ``__init__`` imports ``pkg_resources``, which current
setuptools no longer has, so it is never imported). ``model_path=`` points at another copy.

Detection is the expensive step (tens of ms), the 68 points are cheap (~1-4 ms): tracking detects rarely.
Large images are downscaled for detection only (``detect_max_side``); when nothing is found a second pass
upsamples once (small faces, e.g. a 90 px face in a 1024 px photo).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

import cv2
import dlib
import numpy as np

from talkinghead.landmarks.backends import NUM_LANDMARKS, FaceBox, check_image

log = logging.getLogger(__name__)

PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"


def default_model_path() -> Path:
    """Where ``face-recognition-models`` keeps the 68-point predictor (found without importing it)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the dlib landmark model {PREDICTOR_FILE} was not found: install it with "
            "`pip install face-recognition-models` or pass model_path= to the dlib backend")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / PREDICTOR_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall face-recognition-models or pass model_path=")
    return path


class DlibBackend:
    """dlib HOG detector + 68-point shape predictor (`LandmarkBackend`)."""

    name = "dlib"

    def __init__(self, model_path: str | os.PathLike[str] | None = None, detect_max_side: int = 1024,
                 upsample_retry: bool = True) -> None:
        self.model_path = Path(model_path) if model_path is not None else default_model_path()
        if not self.model_path.is_file():
            raise FileNotFoundError(f"dlib landmark model {self.model_path} does not exist")
        self.detect_max_side = detect_max_side
        self.upsample_retry = upsample_retry
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(self.model_path))

    def detect_faces(self, image: np.ndarray) -> list[FaceBox]:
        image = check_image(image)
        height, width = image.shape[:2]
        factor = min(1.0, self.detect_max_side / max(height, width))
        small = image if factor == 1.0 else cv2.resize(image, (round(width * factor), round(height * factor)),
                                                       interpolation=cv2.INTER_AREA)
        grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        rects, scores, _ = self._detector.run(grey, 0, 0.0)
        if not rects and self.upsample_retry and max(grey.shape) <= 1024:
            rects, scores, _ = self._detector.run(grey, 1, 0.0)
        return [FaceBox(r.left() / factor, r.top() / factor, (r.right() + 1) / factor, (r.bottom() + 1) / factor,
                        float(s)) for r, s in zip(rects, scores, strict=True)]

    def landmarks(self, image: np.ndarray, box: FaceBox) -> np.ndarray:
        image = check_image(image)
        rect = dlib.rectangle(int(round(box.left)), int(round(box.top)), int(round(box.right)) - 1,
                              int(round(box.bottom)) - 1)
        shape = self._predictor(image, rect)
        points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
        assert points.shape == (NUM_LANDMARKS, 2)
        return points
