"""Procedural synthetic talking heads with exact 68-point landmarks (iBUG order), for tests and the demo.

A synthetic person (`Identity`) is a 3D head built from a seed: a 68-point landmark template shaped by the
identity's face-shape parameters, plus non-landmark geometry (cranium, hair volume, ears, neck, shoulders)
and colours. A `Motion` is a smooth random trajectory of per-frame `FramePose`s (head yaw/pitch/roll,
mouth opening, smile, blinks, brow raise, gaze, small translation and scale), independent of the identity.
Every frame rotates the identity's 3D points, projects them with a mild perspective, and draws the picture
from the same projected points that are returned as landmarks, so the landmarks land on the drawn features.

Because a motion does not depend on the identity, rendering identity A with B's motion gives the ground
truth for cross-identity reenactment: B's head pose and expression on A's face shape and appearance::

    a, b = Identity.sample(1), Identity.sample(2)
    motion_b = Motion.sample(seed=7, num_frames=32)
    frames, landmarks, yaw = render_video(a, motion_b, size=128)   # A performing B's motion
    frame, points = render_frame(a, motion_b.frame(0), size=128)   # one frame
    points_only = frame_landmarks(a, motion_b.frame(0), size=128)  # the same landmarks without drawing

Conventions: images are uint8 RGB [H, W, 3]; landmarks float32 [68, 2] (x, y) in pixels of that image;
angles in degrees. Positive yaw turns the face toward image right (the subject's left), positive pitch tilts
the face up, positive roll turns the head clockwise in the image. Everything is deterministic from seeds.

Head coordinates (units of roughly half a face width): x to image right, y down, z toward the camera;
the eyes are at y = 0, the chin near y = 1, the top of the head near y = -1.1.

Files, in the order the data flows: `identity` (a person from a seed), `motion` (poses from a seed),
`geometry` (3D points and the camera), `drawing` (primitives, background, eyes, mouth), `render` (a frame in
named steps, a video, a dataset clip), `contact_sheet` (the docs' picture; ``python -m talkinghead.data.synthetic``).
"""

from talkinghead.data.synthetic.contact_sheet import contact_sheet, save_contact_sheet
from talkinghead.data.synthetic.geometry import frame_landmarks
from talkinghead.data.synthetic.identity import MAX_SIZE, MIN_SIZE, MOUTH_INTERIOR, Identity
from talkinghead.data.synthetic.motion import FramePose, Motion
from talkinghead.data.synthetic.render import SyntheticVideo, render_frame, render_video

__all__ = [
    "Identity",
    "FramePose",
    "Motion",
    "SyntheticVideo",
    "render_frame",
    "render_video",
    "frame_landmarks",
    "contact_sheet",
    "save_contact_sheet",
    "MIN_SIZE",
    "MAX_SIZE",
    "MOUTH_INTERIOR",
]
