"""Optional landmark backends: face-alignment (the paper's detector) and MediaPipe.

Neither is needed offline; each is imported on construction and raises `BackendUnavailable` naming the
pip extra when its package is missing. face-alignment downloads its network weights on first use (online
only). MediaPipe's 468-point mesh is reduced to the 68 iBUG points with the correspondence table below.
Both are thin adapters to the `LandmarkBackend` protocol and are not exercised by the offline test suite.

`independent_detector` hands evaluation a detector that is not dlib: AKD measured with dlib on images whose warp
dlib drove is partly circular (issue 24), so when either optional package is installed AKD is also measured with it.
`mesh_yaw` reads head yaw off MediaPipe's 3D mesh, an estimate independent of `landmarks.pose.estimate_yaw`
(benchmarks/cases/yaw_agreement.py compares the two on real clips).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence

import numpy as np

from talkinghead.landmarks.backends import BackendUnavailable, FaceBox, LandmarkBackend, check_image, choose_face

log = logging.getLogger(__name__)

# iBUG 68 point -> MediaPipe face-mesh vertex (mesh topology facts; left/right as in iBUG order).
MEDIAPIPE_TO_IBUG68 = np.array([
    # jaw 0-16, from the image-left ear over the chin (152) to the image-right ear; mirror pairs
    127, 234, 93, 132, 58, 172, 136, 150, 152, 379, 365, 397, 288, 361, 323, 454, 356,
    70, 63, 105, 66, 107,  # right brow 17-21
    336, 296, 334, 293, 300,  # left brow 22-26
    168, 197, 5, 4,  # nose bridge 27-30
    75, 97, 2, 326, 305,  # lower nose 31-35
    33, 160, 158, 133, 153, 144,  # right eye 36-41
    362, 385, 387, 263, 373, 380,  # left eye 42-47
    61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91,  # outer lips 48-59
    78, 81, 13, 311, 308, 402, 14, 178,  # inner lips 60-67
])

MESH_LEFT_RIGHT_PAIRS = np.array([[33, 263], [133, 362], [61, 291], [234, 454], [127, 356]])
"""Mirror pairs of the MediaPipe mesh, image-left vertex first on a frontal face: outer and inner eye corners,
mouth corners, cheek and temple outline (iBUG 36/45, 39/42, 48/54, 1/15, 0/16 in `MEDIAPIPE_TO_IBUG68`)."""

MESH_MIDLINE = (10, 152)
"""Top of the forehead and chin tip of the MediaPipe mesh: the face's downward axis."""


def _missing(package: str, extra: str) -> BackendUnavailable:
    return BackendUnavailable(f"the {extra} landmark backend needs the `{package}` package: "
                              f"pip install 'talkinghead[{extra}]' (or use the offline default backend 'dlib')")


class FaceAlignmentBackend:
    """Bulat & Tzimiropoulos' FAN (package ``face-alignment``), the detector the paper used."""

    name = "face-alignment"

    def __init__(self, device: str = "cpu", face_detector: str = "sfd") -> None:
        try:
            import face_alignment
        except ImportError as error:
            raise _missing("face-alignment", "face-alignment") from error
        landmarks_type = getattr(face_alignment.LandmarksType, "TWO_D", None) or face_alignment.LandmarksType._2D
        self._model = face_alignment.FaceAlignment(landmarks_type, device=device, face_detector=face_detector)

    def detect_faces(self, image: np.ndarray) -> list[FaceBox]:
        image = check_image(image)
        detections = self._model.face_detector.detect_from_image(np.ascontiguousarray(image[..., ::-1]))
        return [FaceBox(float(d[0]), float(d[1]), float(d[2]), float(d[3]), float(d[4]) if len(d) > 4 else 0.0)
                for d in detections or []]

    def landmarks(self, image: np.ndarray, box: FaceBox) -> np.ndarray:
        image = check_image(image)
        result = self._model.get_landmarks_from_image(image, detected_faces=[
            np.array([box.left, box.top, box.right, box.bottom, 1.0])])
        if not result:
            raise RuntimeError(f"face-alignment returned no landmarks for the box {box}")
        return np.asarray(result[0][:, :2], dtype=np.float32)


class MediaPipeBackend:
    """MediaPipe face detection + face mesh (``mediapipe==0.10.21`` ships its models)."""

    name = "mediapipe"

    def __init__(self, min_confidence: float = 0.5) -> None:
        try:
            import mediapipe
        except ImportError as error:
            raise _missing("mediapipe", "mediapipe") from error
        solutions = mediapipe.solutions
        self._detector = solutions.face_detection.FaceDetection(model_selection=1,
                                                                min_detection_confidence=min_confidence)
        self._mesh = solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1,
                                                  min_detection_confidence=min_confidence)

    def detect_faces(self, image: np.ndarray) -> list[FaceBox]:
        image = check_image(image)
        height, width = image.shape[:2]
        result = self._detector.process(image)
        boxes = []
        for detection in result.detections or []:
            rel = detection.location_data.relative_bounding_box
            boxes.append(FaceBox(rel.xmin * width, rel.ymin * height, (rel.xmin + rel.width) * width,
                                 (rel.ymin + rel.height) * height, float(detection.score[0])))
        return boxes

    def landmarks(self, image: np.ndarray, box: FaceBox) -> np.ndarray:
        return self.mesh(image, box)[MEDIAPIPE_TO_IBUG68, :2].astype(np.float32)

    def mesh(self, image: np.ndarray, box: FaceBox) -> np.ndarray:
        """The 468-vertex face mesh of the face in ``box``: float64 [468, 3], x and y in image pixels, z in pixels
        toward the camera (MediaPipe's relative depth, which grows away from the camera, negated and scaled by the
        window width as MediaPipe scales it like x): the head convention of `landmarks.pose`."""
        image = check_image(image)
        height, width = image.shape[:2]
        # The mesh model wants a face with context: run it on the box grown 1.6x, clipped to the image.
        cx, cy = box.center
        half = 0.8 * max(box.width, box.height)
        x0, y0 = max(int(cx - half), 0), max(int(cy - half), 0)
        x1, y1 = min(int(cx + half), width), min(int(cy + half), height)
        window = np.ascontiguousarray(image[y0:y1, x0:x1])
        result = self._mesh.process(window)
        if not result.multi_face_landmarks:
            raise RuntimeError(f"mediapipe found no face mesh in the box {box}")
        mesh = result.multi_face_landmarks[0].landmark
        return np.array([(v.x * (x1 - x0) + x0, v.y * (y1 - y0) + y0, -v.z * (x1 - x0)) for v in mesh[:468]])


def mesh_yaw(mesh: np.ndarray) -> float:
    """Head yaw in degrees of a MediaPipe mesh [468, 3] (`MediaPipeBackend.mesh`), in `landmarks.pose`'s convention
    (positive turns the face toward image right; yaw = atan2(-R[2,0], R[2,2]) of the head's rotation R).

    No face model is fitted: the head's x axis is the mean direction of the mirror pairs, its y axis the forehead-chin
    line made orthogonal to it, z their cross product; R's columns are those axes. The depth comes from MediaPipe's
    network, not from any template of this project, which is what makes it an independent check of the 2D fit.
    Upright is the forehead-chin line: where it leans in depth by δ, the yaw read is atan(tan(yaw) / cos δ), 1.5%
    more at δ = 10°. MediaPipe's depth has its own scale: on rendered synthetic heads of known yaw this reads about
    1.2x the truth (benchmarks/cases/yaw_agreement.py measures it).
    """
    mesh = np.asarray(mesh, dtype=np.float64)
    if mesh.shape != (468, 3) or not np.isfinite(mesh).all():
        raise ValueError(f"mesh_yaw needs a finite MediaPipe mesh [468, 3], got {mesh.shape}")
    across = mesh[MESH_LEFT_RIGHT_PAIRS[:, 1]] - mesh[MESH_LEFT_RIGHT_PAIRS[:, 0]]
    x_axis = (across / np.linalg.norm(across, axis=1, keepdims=True)).sum(axis=0)
    x_axis /= np.linalg.norm(x_axis)
    y_axis = mesh[MESH_MIDLINE[1]] - mesh[MESH_MIDLINE[0]]
    y_axis -= (y_axis @ x_axis) * x_axis
    y_axis /= np.linalg.norm(y_axis)
    z_axis = np.cross(x_axis, y_axis)
    return math.degrees(math.atan2(-x_axis[2], z_axis[2]))


LandmarkDetector = Callable[[np.ndarray], np.ndarray | None]
"""uint8 RGB image [H, W, 3] -> float32 [68, 2] (x, y) pixels of its main face, or None when it finds none."""

INDEPENDENT_BACKENDS: tuple[tuple[str, Callable[[], LandmarkBackend]], ...] = (
    ("mediapipe", MediaPipeBackend), ("face-alignment", FaceAlignmentBackend))
"""Backends `independent_detector` tries, in order: MediaPipe first, as it runs offline (its package ships its
models); face-alignment downloads its weights on first use."""


def independent_detector(backends: Sequence[tuple[str, Callable[[], LandmarkBackend]]] = INDEPENDENT_BACKENDS
                         ) -> tuple[str, LandmarkDetector] | None:
    """(name, detector) for the first installed landmark backend that is not dlib, or None when none is.

    For AKD measured by something other than the detector that drove the warp (issue 24). A backend whose package is
    missing is skipped silently; one that is installed but cannot start (face-alignment offline, without its weights)
    is skipped with a warning, so evaluation carries on with dlib's AKD only. ``backends``: (name, constructor) pairs,
    replaceable in tests.
    """
    for name, make in backends:
        try:
            backend = make()
        except BackendUnavailable:
            continue
        except Exception as error:  # noqa: BLE001 - an optional check must not stop evaluation; the reason is logged
            log.warning("landmark backend %s is installed but cannot start (%s: %s); AKD is measured with dlib only",
                        name, type(error).__name__, error)
            continue
        return name, _main_face_landmarks(backend)
    return None


def _main_face_landmarks(backend: LandmarkBackend) -> LandmarkDetector:
    """A detector of ``backend``'s 68 points on the main face of an image (`backends.choose_face`: the largest, most
    central), None when it finds no face or no landmarks in the face's box."""

    def detect(image: np.ndarray) -> np.ndarray | None:
        image = check_image(image)
        boxes = backend.detect_faces(image)
        if not boxes:
            return None
        box = choose_face(boxes, (image.shape[1], image.shape[0]))
        try:
            points = backend.landmarks(image, box)
        except RuntimeError:  # both optional backends raise it when the box holds no face they can fit
            return None
        return np.asarray(points, dtype=np.float32)

    return detect
