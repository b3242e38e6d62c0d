"""When to add and remove capacity, as one policy mapped onto Ray's own autoscalers.

The seed's rules: scale up when load stays high for the upscale delay (queue > 100; +25%,
at least one; cooldown 5 min), scale down when it stays low for the downscale delay
(queue < 10 for 15 min; one at a time; cooldown 10 min; at least 2 in production). How
they map, and where Ray cannot say exactly the same:

- Ingress replicas → Serve's ``autoscaling_config``: ``target_ongoing_requests`` is the
  upscale queue threshold (requests in flight per replica), ``upscale_delay_s`` and
  ``downscale_delay_s`` the sustain times. Serve has one target, so it scales down when
  the queue stays below the target (not below ``queue_below``), and each delay is also
  the cooldown: a cooldown longer than its delay cannot be expressed and is refused.
- Cluster nodes → the Ray cluster autoscaler (cluster.yaml): ``upscaling_speed`` is the
  step fraction, ``idle_timeout_minutes`` the downscale delay, min/max workers the bounds.
  It adds nodes for resource requests that cannot be placed (tasks, actors, replicas),
  and removes idle ones one by one.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ScaleUp(BaseModel):
    """Grow when the queue stays above ``queue_above`` for ``for_s``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    queue_above: float = Field(default=100, gt=0, description="Requests in flight per ingress replica.")
    cpu_above: float = Field(
        default=70, gt=0, description="Host pools: mean CPU use of their hosts, in % of one core (seed: 70)."
    )
    for_s: float = Field(default=300, ge=0, description="How long the queue must stay above it (seed: 5 min).")
    cooldown_s: float = Field(default=300, ge=0, description="No further growth for this long (at most for_s).")
    step_fraction: float = Field(
        default=0.25, gt=0, description="Cluster nodes added per round, as a share of the current."
    )


class ScaleDown(BaseModel):
    """Shrink when the load stays low for ``for_s``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    queue_below: float = Field(
        default=10, ge=0, description="Requests in flight per replica (Serve: see the module doc)."
    )
    cpu_below: float = Field(
        default=30, ge=0, description="Host pools: mean CPU use of their hosts, in % of one core (seed: 30)."
    )
    for_s: float = Field(default=900, ge=0, description="How long it must stay low (seed: 15 min).")
    cooldown_s: float = Field(default=600, ge=0, description="No further shrinking for this long (at most for_s).")


class ScalingPolicy(BaseModel):
    """Bounds and rules for the ingress replicas and the cluster's worker nodes. The
    default suits a laptop: one replica, no worker nodes (nothing scales)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ingress_min_replicas: int = Field(default=1, ge=1, description="Fewest ingress replicas (production: 2).")
    ingress_max_replicas: int = Field(
        default=1, ge=1, description="Most ingress replicas; above the min: Serve autoscales."
    )
    run_hosts_min: int = Field(default=1, ge=1, description="Fewest RunHost actors.")
    run_hosts_max: int = Field(
        default=1, ge=1, le=256, description="Most RunHost actors; above the min: the pool resizes."
    )
    runs_per_host: float = Field(
        default=100, gt=0, description="Runs in flight per RunHost above which the pool grows."
    )
    session_hosts_min: int = Field(default=1, ge=1, description="Fewest SessionHost actors.")
    session_hosts_max: int = Field(
        default=1, ge=1, le=256, description="Most SessionHost actors; above the min: the pool resizes."
    )
    sessions_per_host: float = Field(
        default=10_000, gt=0, description="Sessions in memory per SessionHost above which the pool grows."
    )
    workers_min: int = Field(default=0, ge=0, description="Fewest CPU worker nodes (cluster.yaml).")
    workers_max: int = Field(default=0, ge=0, description="Most CPU worker nodes (cluster.yaml).")
    up: ScaleUp = ScaleUp()  # frozen: one shared default is safe
    down: ScaleDown = ScaleDown()

    @model_validator(mode="after")
    def _consistent(self) -> ScalingPolicy:
        bounds = [
            (self.ingress_min_replicas, self.ingress_max_replicas),
            (self.run_hosts_min, self.run_hosts_max),
            (self.session_hosts_min, self.session_hosts_max),
            (self.workers_min, self.workers_max),
        ]
        if any(high < low for low, high in bounds):
            raise ValueError("each maximum must be at least its minimum")
        for rule, name in ((self.up, "up"), (self.down, "down")):
            if rule.cooldown_s > rule.for_s:
                raise ValueError(
                    f"{name}.cooldown_s ({rule.cooldown_s:g}) exceeds {name}.for_s ({rule.for_s:g}): Serve's delay is "
                    "also its cooldown, so a longer cooldown cannot be honoured; raise for_s"
                )
        return self

    @classmethod
    def production(cls) -> ScalingPolicy:
        """The seed's rules with production bounds: 2-8 replicas, 2-8 hosts per pool, 2-16 worker nodes."""
        return cls(
            ingress_min_replicas=2,
            ingress_max_replicas=8,
            run_hosts_min=2,
            run_hosts_max=8,
            session_hosts_min=2,
            session_hosts_max=8,
            workers_min=2,
            workers_max=16,
        )

    @property
    def autoscales_ingress(self) -> bool:
        """Whether Serve scales the ingress (else it runs a fixed number of replicas)."""
        return self.ingress_max_replicas > self.ingress_min_replicas

    @property
    def resizes_run_hosts(self) -> bool:
        """Whether the RunHost pool grows and shrinks (else it has ``settings.run_hosts``)."""
        return self.run_hosts_max > self.run_hosts_min

    @property
    def resizes_session_hosts(self) -> bool:
        """Whether the SessionHost pool grows and shrinks (else ``settings.session_hosts``)."""
        return self.session_hosts_max > self.session_hosts_min

    def pool_scaler(self, kind: str) -> PoolScaler:
        """The sizing rules of the "run" or "session" host pool."""
        if kind == "run":
            return PoolScaler(self.run_hosts_min, self.run_hosts_max, self.runs_per_host, self.up, self.down)
        return PoolScaler(self.session_hosts_min, self.session_hosts_max, self.sessions_per_host, self.up, self.down)

    def serve_autoscaling_config(self) -> dict[str, Any]:
        """The ingress deployment's ``autoscaling_config``."""
        look_back = max(1.0, min(30.0, self.up.for_s or 1.0))
        return {
            "min_replicas": self.ingress_min_replicas,
            "initial_replicas": self.ingress_min_replicas,
            "max_replicas": self.ingress_max_replicas,
            "target_ongoing_requests": self.up.queue_above,
            "upscale_delay_s": self.up.for_s,
            "downscale_delay_s": self.down.for_s,
            "look_back_period_s": look_back,
            "metrics_interval_s": max(0.5, min(10.0, look_back / 2)),
        }

    def cluster_autoscaler(self) -> dict[str, Any]:
        """The cluster launcher's autoscaler keys (cluster.yaml) and the CPU worker bounds."""
        return {
            "upscaling_speed": self.up.step_fraction,
            "idle_timeout_minutes": self.down.for_s / 60,
            "cpu_worker": {"min_workers": self.workers_min, "max_workers": self.workers_max},
        }


class PoolScaler:
    """Sizes one host pool from its hosts' load by the policy's rules. Pure: the PoolManager
    feeds it a reading every second and applies its answer.

    Grows (by ``up.step_fraction`` of the pool, at least one host) when, for ``up.for_s``,
    the load per host exceeds ``target`` or the hosts' mean CPU exceeds ``up.cpu_above``;
    shrinks by one host when, for ``down.for_s``, the load per host, counted over one host
    fewer, stays below ``target × down.queue_below / up.queue_above`` (seed: 10 / 100) and
    the mean CPU below ``down.cpu_below``. After a resize, no growth for ``up.cooldown_s``
    and no shrinking for ``down.cooldown_s``.
    """

    def __init__(self, min_size: int, max_size: int, target: float, up: ScaleUp, down: ScaleDown) -> None:
        self.min_size, self.max_size, self.target, self.up, self.down = min_size, max_size, target, up, down
        self._high_since: float | None = None
        self._low_since: float | None = None
        self._resized_at = float("-inf")

    def desired(self, now: float, size: int, active: float, cpu: float) -> int:
        """The pool size wanted now, for ``size`` hosts holding ``active`` runs or sessions
        in total at a mean CPU use of ``cpu`` (% of one core)."""
        if size < self.min_size or size > self.max_size:
            return min(self.max_size, max(self.min_size, size))
        high = active / size > self.target or cpu > self.up.cpu_above
        low_mark = self.target * self.down.queue_below / self.up.queue_above
        low = size > 1 and active / (size - 1) < low_mark and cpu < self.down.cpu_below
        self._high_since = (now if self._high_since is None else self._high_since) if high else None
        self._low_since = (now if self._low_since is None else self._low_since) if low else None
        since_resize = now - self._resized_at
        if self._held(self._high_since, now, self.up.for_s) and since_resize >= self.up.cooldown_s:
            return min(self.max_size, size + max(1, math.ceil(size * self.up.step_fraction)))
        if self._held(self._low_since, now, self.down.for_s) and since_resize >= self.down.cooldown_s:
            return max(self.min_size, size - 1)
        return size

    def resized(self, now: float) -> None:
        """Note that the pool was resized at ``now`` (cooldowns start, conditions restart)."""
        self._resized_at, self._high_since, self._low_since = now, None, None

    @staticmethod
    def _held(since: float | None, now: float, for_s: float) -> bool:
        return since is not None and now - since >= for_s
