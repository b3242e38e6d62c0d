"""Translate Ray's exceptions into the NexusError tree."""

from __future__ import annotations

from ray.exceptions import RayActorError

from ..errors import RuntimeUnavailableError


def translate_ray_error(exc: Exception) -> Exception:
    """What an actor raised (a NexusError, or the exception of a caller's own function,
    such as a session turn), unwrapped from Ray's error (raise it ``from`` that error: it
    keeps the actor's traceback); a dead actor is RuntimeUnavailableError."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, Exception):
        return cause
    if isinstance(exc, RayActorError):
        return RuntimeUnavailableError(f"A run host is not available: {exc}. Retry shortly.")
    return exc


class HostMovedError(RuntimeUnavailableError):
    """A SessionHost was asked about a session it no longer owns (its pool was resized):
    the caller takes the pool's current members and asks the new owner."""
