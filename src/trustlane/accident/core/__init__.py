"""Collision timing core: pure functions over numpy arrays (numpy and scipy only, no trustlane imports).

Entry point: :func:`detect_collisions`. Time is integer nanoseconds since the Unix epoch; accelerations are m/s²
in the vehicle frame (x forward, y left, ISO 8855).
"""

from .detect import Detection, detect_collisions
from .errors import SignalError
from .events import CollisionEvent, Finding

__all__ = ["CollisionEvent", "Detection", "Finding", "SignalError", "detect_collisions"]
