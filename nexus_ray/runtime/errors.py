"""Translate Ray's exceptions into the NexusError tree."""

from __future__ import annotations

from typing import Any

import ray
from ray.exceptions import RayActorError

from ..errors import InvalidRequestError, RuntimeUnavailableError


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


UNPICKLABLE = "Could not serialize the argument"  # how Ray's TypeError for such an argument starts


def cannot_send(method: str, reason: object) -> InvalidRequestError:
    """The caller's mistake of passing what Ray cannot pickle (a function turn that holds a
    lock, a socket, a client) to a host's ``method``."""
    return InvalidRequestError(
        f"The arguments of {method} cannot be sent to its host: Ray cannot pickle them ({reason}).", method=method
    )


def submit(actor: Any, method: str, args: tuple[Any, ...]) -> Any:
    """``actor.method.remote(*args)`` (its ObjectRef). Ray's error for arguments it cannot
    pickle is raised as :func:`cannot_send` naming what failed: Ray's own is a page long
    and names its internals."""
    try:
        return getattr(actor, method).remote(*args)
    except TypeError as exc:
        if not str(exc).startswith(UNPICKLABLE):
            raise
        raise _pickle_problem(method, args) or cannot_send(method, str(exc).splitlines()[0]) from None


def unsendable_calls(calls: list[tuple[str, tuple[Any, ...]]]) -> list[InvalidRequestError | None]:
    """For each ``(method, args)`` of a batch Ray could not send: the error of a call whose
    arguments cannot be pickled, None for one whose can."""
    return [_pickle_problem(method, args) for method, args in calls]


def _pickle_problem(method: str, args: tuple[Any, ...]) -> InvalidRequestError | None:
    try:
        ray.cloudpickle.dumps(args)
    except Exception as exc:  # a closure can fail to pickle in many ways
        return cannot_send(method, exc)
    return None
