"""embodia: an embodied-agent simulator.

Importing the package registers its Gymnasium environments (``embodia/...`` ids). On a machine without a
display, MuJoCo rendering defaults to headless EGL (set ``MUJOCO_GL`` before importing to choose otherwise).
"""

import os

if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
    os.environ["MUJOCO_GL"] = "egl"

from embodia import envs as envs

__version__ = "0.1.0"
