"""Translate Ray's exceptions into the NexusError tree."""

from __future__ import annotations

import re
from typing import Any

import ray
from ray.exceptions import RayActorError

from ..errors import InvalidRequestError, NexusError, RuntimeUnavailableError


def translate_ray_error(exc: Exception) -> Exception:
    """What an actor raised (a NexusError, or the exception of a caller's own function,
    such as a session turn), unwrapped from Ray's error (raise it ``from`` that error: it
    keeps the actor's traceback); a dead actor is RuntimeUnavailableError, or the
    NexusError its constructor raised."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, Exception):
        return cause
    if isinstance(exc, RayActorError):
        return init_failure(exc) or RuntimeUnavailableError(f"A host is not available: {exc}. Retry shortly.")
    return exc


_RAISED = re.compile(r"^nexus_ray(?:\.\w+)*\.(\w+Error): ", re.MULTILINE)  # a traceback's last line
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def init_failure(exc: RayActorError) -> NexusError | None:
    """The NexusError an actor's constructor raised (a host that cannot open the store:
    PostgreSQL refusing connections, a newer schema), or None. Ray keeps only its text, a
    traceback; when a constructor failed creating another actor (the PoolManager its
    hosts), the innermost error is the last."""
    if not exc.actor_init_failed:
        return None
    text = _ANSI.sub("", str(exc))
    raised = list(_RAISED.finditer(text))
    kind = _nexus_error_named(raised[-1].group(1)) if raised else None
    if kind is None:
        return None
    message = text[raised[-1].end() :].strip()
    try:
        return kind(message)
    except TypeError:  # a kind with arguments of its own (RateLimitedError)
        return RuntimeUnavailableError(message)


def _nexus_error_named(name: str) -> type[NexusError] | None:
    kinds: list[type[NexusError]] = [NexusError]
    while kinds:
        kind = kinds.pop()
        if kind.__name__ == name:
            return kind
        kinds.extend(kind.__subclasses__())
    return None


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
