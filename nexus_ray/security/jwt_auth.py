"""JWT verification (PyJWT): HS256 with a shared secret, or RS256/ES256 with a PEM public
key or a JWKS file. ``exp`` is required; ``nbf``, ``iss`` and ``aud`` are checked when
configured or present; claims ``sub``, ``tenant`` and ``roles`` make the principal."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt

from ..errors import AuthenticationError, ConfigurationError
from .principal import Principal

MIN_SECRET_BYTES = 32
ASYMMETRIC = ["RS256", "ES256"]
# Verified tokens are remembered until they expire: a client sends the same token with
# every request, and verifying it again costs ~45 us (a twentieth of a request's CPU).
CACHE_SIZE = 10_000


class JwtVerifier:
    """Verifies bearer JWTs against one configured key source.

    Args:
        secret: HS256 key (at least 32 bytes).
        public_key: RS256/ES256 PEM text, or the path of a PEM file.
        jwks_file: RS256/ES256 JWKS file (the token header's ``kid`` picks the key).
        issuer: Required ``iss``; None: not checked.
        audience: Required ``aud``; None: not checked.
        leeway_s: Clock skew allowed on ``exp``, ``nbf`` and ``iat``.
    """

    def __init__(
        self,
        secret: str | None = None,
        public_key: str | None = None,
        jwks_file: Path | None = None,
        issuer: str | None = None,
        audience: str | None = None,
        leeway_s: float = 30.0,
    ) -> None:
        configured = [name for name, v in (("secret", secret), ("public key", public_key), ("JWKS", jwks_file)) if v]
        if len(configured) > 1:
            raise ConfigurationError(
                f"Configure one JWT key source, not {' and '.join(configured)}: NEXUS_JWT_SECRET (HS256), "
                "NEXUS_JWT_PUBLIC_KEY or NEXUS_JWT_JWKS_FILE (RS256/ES256)."
            )
        self.issuer, self.audience, self.leeway_s = issuer, audience, leeway_s
        self._secret = _check_secret(secret) if secret else None
        self._public_key = _load_pem(public_key) if public_key else None
        self._jwks = _load_jwks(jwks_file) if jwks_file else None
        self._verified: dict[str, tuple[Principal, float]] = {}

    @property
    def configured(self) -> bool:
        """Whether any key source is set."""
        return self._secret is not None or self._public_key is not None or self._jwks is not None

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; :class:`AuthenticationError` naming the reason."""
        remembered = self._verified.get(token)
        if remembered is not None and time.time() < remembered[1]:
            return remembered[0]
        if not self.configured:
            raise AuthenticationError("JWTs are not accepted here (no JWT key is configured); use an API key.")
        key, algorithms = self._key_for(token)
        options = {"require": ["exp", "sub"], "verify_aud": self.audience is not None}
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options=options,  # type: ignore[arg-type]
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationError("The token has expired (exp).", reason="expired") from None
        except jwt.ImmatureSignatureError:
            raise AuthenticationError("The token is not valid yet (nbf).", reason="not_yet_valid") from None
        except jwt.InvalidAudienceError:
            raise AuthenticationError(f"The token's audience is not {self.audience!r}.", reason="audience") from None
        except jwt.InvalidIssuerError:
            raise AuthenticationError(f"The token's issuer is not {self.issuer!r}.", reason="issuer") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthenticationError(f"The token has no {exc.claim!r} claim.", reason="claims") from None
        except jwt.InvalidSignatureError:
            raise AuthenticationError("The token's signature is not valid.", reason="signature") from None
        except jwt.InvalidTokenError as exc:
            raise AuthenticationError(f"The token is not valid: {exc}.", reason="invalid") from None
        principal = _principal(claims)
        if len(self._verified) >= CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = (principal, float(claims["exp"]) + self.leeway_s)  # as long as decode accepts it
        return principal

    def _key_for(self, token: str) -> tuple[Any, list[str]]:
        if self._secret is not None:
            return self._secret, ["HS256"]
        if self._public_key is not None:
            return self._public_key, ASYMMETRIC
        assert self._jwks is not None
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.InvalidTokenError as exc:
            raise AuthenticationError(f"The token is not valid: {exc}.", reason="invalid") from None
        for key in self._jwks.keys:
            if kid is None or key.key_id == kid:
                return key.key, ASYMMETRIC
        raise AuthenticationError(f"No key with kid {kid!r} in the JWKS.", reason="signature")


def _principal(claims: dict[str, Any]) -> Principal:
    tenant = claims.get("tenant")
    if not isinstance(tenant, str) or not tenant:
        raise AuthenticationError("The token has no 'tenant' claim (a non-empty string).", reason="claims")
    roles = claims.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise AuthenticationError("The token's 'roles' claim must be a list of strings.", reason="claims")
    return Principal(str(claims["sub"]), tenant, tuple(roles), "jwt")


def _check_secret(secret: str) -> str:
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ConfigurationError(
            f"NEXUS_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes (it has {len(secret.encode())}); "
            'generate one with: python -c "import secrets; print(secrets.token_urlsafe(48))"'
        )
    return secret


def _load_pem(value: str) -> Any:
    text = value if "-----BEGIN" in value else _read(Path(value), "NEXUS_JWT_PUBLIC_KEY")
    try:
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        return load_pem_public_key(text.encode())
    except ValueError as exc:
        raise ConfigurationError(f"NEXUS_JWT_PUBLIC_KEY is not a PEM public key: {exc}") from None


def _load_jwks(path: Path) -> jwt.PyJWKSet:
    try:
        return jwt.PyJWKSet.from_json(_read(path, "NEXUS_JWT_JWKS_FILE"))
    except (jwt.PyJWKSetError, jwt.InvalidKeyError, json.JSONDecodeError) as exc:
        raise ConfigurationError(f"NEXUS_JWT_JWKS_FILE {str(path)!r} is not a usable JWKS: {exc}") from None


def _read(path: Path, setting: str) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise ConfigurationError(f"{setting}: cannot read {str(path)!r}: {exc.strerror}.") from None
