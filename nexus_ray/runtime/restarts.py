"""Whether Ray restarted the current actor (its calls in flight then come again)."""

from __future__ import annotations

import warnings

import ray
from ray.util.annotations import RayDeprecationWarning


def was_restarted() -> bool:
    """Ray's public answer (``was_current_actor_reconstructed``). It calls an internal Ray
    API that warns it is deprecated: a RayDeprecationWarning with a stack trace in each
    host's log at every start, about Ray's own code, among the warnings an operator reads
    there (a blocked loop, a lost lease). Kept out of the log here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RayDeprecationWarning)
        return bool(ray.get_runtime_context().was_current_actor_reconstructed)
