"""The Ray namespace of every nexus_ray actor, and finding an app's actors by name."""

from __future__ import annotations

import ray
from ray.actor import ActorHandle

NAMESPACE = "nexus"


def pool_host_name(prefix: str, host_id: str) -> str:
    """The actor name of app ``prefix``'s pool host ``host_id`` (``run-host-0``, ...)."""
    return f"{prefix}-{host_id}"


def actor_names(prefix: str) -> list[str]:
    """The names of this namespace's live actors that start with ``prefix`` (one call to
    the GCS; no handle is looked up)."""
    return [
        actor["name"]
        for actor in ray.util.list_named_actors(all_namespaces=True)
        if actor["namespace"] == NAMESPACE and actor["name"].startswith(prefix)
    ]


def named_actors(prefix: str) -> dict[str, ActorHandle]:
    """The live actors of this namespace whose names start with ``prefix``, by name."""
    found = {}
    for name in actor_names(prefix):
        try:
            found[name] = ray.get_actor(name, namespace=NAMESPACE)
        except ValueError:  # gone meanwhile
            continue
    return found
