"""All configuration, from keyword arguments or ``NEXUS_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .scaling import ScalingPolicy


class Settings(BaseSettings):
    """Nexus settings. Each field reads ``NEXUS_<FIELD>`` unless given explicitly."""

    model_config = SettingsConfigDict(env_prefix="NEXUS_", extra="forbid", frozen=True)

    host: str = Field("127.0.0.1", description="Interface the HTTP ingress binds.")
    port: int = Field(8000, ge=0, le=65535, description="HTTP ingress port.")
    home: Path = Field(Path(".nexus"), description="Directory of the local store and state.")
    ray_address: str | None = Field(
        None,
        validation_alias=AliasChoices("NEXUS_RAY_ADDRESS", "RAY_ADDRESS"),
        description="Join this Ray cluster ('auto', 'ip:port', 'ray://...'); unset: embedded local Ray.",
    )
    store_url: str | None = Field(
        None, description="postgresql://... for a cluster; unset: SQLite at HOME/nexus.db (sqlite:///PATH also works)."
    )
    durable: bool = Field(True, description="Store runs and checkpoint every node (off: faster, nothing survives).")
    lease_s: float = Field(10.0, gt=0, description="A run's owner lease; an orphan is adopted after at most this.")
    audit_retention_days: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description="Delete audit entries this many days old; unset: keep the whole audit trail.",
    )
    run_retention_days: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description="Delete finished runs (with their events and idempotency keys) this many days after they "
        "finished, and global events (broadcast without a session) this many days old; unset: keep them all.",
    )
    ingress: Literal["auto", "haproxy", "default"] = Field(
        "auto",
        description="'haproxy': Serve's HAProxy ingress (needs haproxy on PATH); 'default': "
        "Serve's Python proxy; 'auto': haproxy when on PATH.",
    )
    max_body_bytes: int = Field(1 << 20, ge=1, description="Largest accepted request body (413 above).")
    mcp_allowed_hosts: list[str] = Field(
        default_factory=lambda: ["127.0.0.1:*", "localhost:*", "[::1]:*"],
        description="Host header values /mcp accepts (DNS-rebinding protection); 'name:*' allows any port, "
        "['*'] turns the check off.",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed by CORS (e.g. https://app.example.com, or * for any); empty: CORS off.",
    )
    run_hosts: int = Field(1, ge=1, le=256, description="RunHost actors in the pool.")
    session_hosts: int = Field(1, ge=1, le=256, description="SessionHost actors in the pool.")
    session_isolation: Literal["shared", "dedicated"] = Field(
        "shared", description="'dedicated': every session gets its own Ray actor (isolation, its own process)."
    )
    session_idle_s: float = Field(300.0, gt=0, description="A session unused this long is dropped from memory.")
    max_dedicated_sessions: int = Field(
        32,
        ge=1,
        description="Dedicated sessions whose Ray actor (a worker process each) may be up at once; a call that "
        "would start one more gets 429 until one leaves memory.",
    )
    max_dedicated_sessions_per_tenant: int | None = Field(
        None,
        ge=1,
        description="Of those, how many one tenant's sessions may hold (429 above); unset: no limit per tenant.",
    )
    ingress_replicas: int = Field(1, ge=1, description="Serve replicas of the HTTP ingress (when not autoscaled).")
    scaling: ScalingPolicy = Field(
        default=ScalingPolicy(),
        description="Autoscaling of the ingress and the cluster (nexus_ray/scaling.py); JSON in NEXUS_SCALING.",
    )
    ingress_max_ongoing_requests: int = Field(
        2048,
        ge=1,
        description="Requests one ingress replica holds at once. Replicas are fully async, so a waiting "
        "request costs little; past the limit the proxy queues them (1,000 one-second runs: 26 s at 256).",
    )
    batch_wait_ms: float = Field(
        10.0,
        ge=0,
        description="How long a batched run call waits for its calls before the slow ones are "
        "claimed together in one streaming call (see runtime/batching.py).",
    )
    batch_inflight: int = Field(
        1, ge=1, le=64, description="Batched calls a caller keeps in flight per host actor (see runtime/batching.py)."
    )
    node_threads: int = Field(64, ge=1, description="Threads per RunHost for synchronous node code.")
    crash_retries: int = Field(
        3,
        ge=0,
        description="How many times a node that was running when its host died runs again; at the next such "
        "death its run fails (NodeCrashedError), so a node that kills its host takes down no more.",
    )
    resource_wait_s: float | None = Field(
        None,
        ge=0,
        allow_inf_nan=False,
        description="How long a node whose resources= no node of the Ray cluster has waits for one to join "
        "(the cluster autoscaler's work) before it fails; unset: 0 on an embedded local Ray, 600 on a cluster.",
    )
    ready_timeout_s: float = Field(90.0, gt=0, description="How long start() waits for a 2xx.")
    num_cpus: int | None = Field(None, ge=1, description="CPUs of the embedded Ray (default: all).")
    debug: bool = Field(False, description="Include internal error details in responses.")

    # -- security (see nexus_ray/security) ------------------------------------------------
    env: Literal["development", "production"] = Field(
        "development", description="'production' turns auth on (and audit with it)."
    )
    auth: bool | None = Field(None, description="Require a credential on every channel; unset: on in production.")
    jwt_secret: SecretStr | None = Field(None, description="HS256 key for JWTs (at least 32 bytes).")
    jwt_public_key: str | None = Field(None, description="RS256/ES256: a PEM public key, or the path of a PEM file.")
    jwt_jwks_file: Path | None = Field(None, description="RS256/ES256: a JWKS file; the token's 'kid' picks the key.")
    jwt_issuer: str | None = Field(None, description="Required 'iss' of JWTs (unset: not checked).")
    jwt_audience: str | None = Field(None, description="Required 'aud' of JWTs (unset: not checked).")
    jwt_leeway_s: float = Field(30.0, ge=0, description="Clock skew allowed on exp/nbf/iat.")
    roles: dict[str, dict[str, list[str]]] = Field(
        default_factory=dict,
        description="Roles beyond admin and viewer: role -> {workflow pattern -> [actions]} (see README).",
    )
    roles_file: Path | None = Field(None, description="A YAML file of roles (same shape as 'roles').")
    rate_limit: str | None = Field(
        None, description="Requests per principal, e.g. '100/minute' (also /second, /hour); unset: none."
    )
    max_runs_per_tenant: int | None = Field(
        None, ge=1, description="Runs a tenant may have pending or running at once (429 above); unset: no limit."
    )
    max_input_depth: int = Field(32, ge=1, description="Deepest nesting accepted in inputs and session state.")
    public_docs: bool = Field(False, description="With auth on: serve /docs and /openapi.json without a credential.")
    public_metrics: bool = Field(False, description="With auth on: serve /metrics without a credential.")
    audit: bool | None = Field(None, description="Keep the audit trail; unset: on whenever auth is on.")

    @model_validator(mode="after")
    def _runs_can_move(self) -> Settings:
        if self.scaling.resizes_run_hosts and not self.durable:
            raise ValueError(
                "resizing the RunHost pool (scaling.run_hosts_max > run_hosts_min) needs durable runs: without the "
                "store a run lives only in its host's memory and cannot move; set durable=true or equal bounds"
            )
        return self

    def host_pool_sizes(self) -> dict[str, int]:
        """Hosts per pool at start: the policy's minimum for a pool it resizes, else
        ``run_hosts`` / ``session_hosts``."""
        policy = self.scaling
        return {
            "run": policy.run_hosts_min if policy.resizes_run_hosts else self.run_hosts,
            "session": policy.session_hosts_min if policy.resizes_session_hosts else self.session_hosts,
        }

    def portable(self) -> dict[str, Any]:
        """A dict that rebuilds these settings in another process, secrets included."""
        data = self.model_dump(mode="json")
        if self.jwt_secret is not None:
            data["jwt_secret"] = self.jwt_secret.get_secret_value()
        return data

    @property
    def auth_enabled(self) -> bool:
        """Whether every channel requires a credential."""
        return self.auth if self.auth is not None else self.env == "production"

    @property
    def audit_enabled(self) -> bool:
        """Whether actions are written to the audit trail."""
        return self.audit if self.audit is not None else self.auth_enabled


def load_settings(base: Settings | None = None, **options: Any) -> Settings:
    """Settings from ``options`` over ``base``'s explicit values (over ``NEXUS_*`` and the
    defaults); a bad value is a ConfigurationError naming it, not a traceback."""
    from .errors import ConfigurationError

    values = {**(base.model_dump(exclude_unset=True) if base is not None else {}), **options}
    try:
        return Settings(**values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        raise ConfigurationError(f"Invalid settings (arguments or NEXUS_* variables): {problems}.") from exc
