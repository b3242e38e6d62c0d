"""JWT verification: HS256, RS256 with a PEM key, ES256 from a JWKS file, and every way
a token is refused (each names why)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from nexus_ray.errors import AuthenticationError, ConfigurationError
from nexus_ray.security.jwt_auth import JwtVerifier

SECRET = "s" * 40


def claims(**extra: Any) -> dict[str, Any]:
    now = time.time()
    return {"sub": "ann", "tenant": "acme", "roles": ["viewer"], "exp": now + 60, "iat": now} | extra


def test_hs256_token_gives_its_principal() -> None:
    principal = JwtVerifier(SECRET).verify(jwt.encode(claims(), SECRET, "HS256"))
    assert (principal.subject, principal.tenant, principal.roles, principal.via) == ("ann", "acme", ("viewer",), "jwt")


@pytest.mark.parametrize(
    ("token_claims", "key", "reason", "message"),
    [
        ({"exp": time.time() - 120}, SECRET, "expired", "expired"),
        ({"nbf": time.time() + 600}, SECRET, "not_yet_valid", "not valid yet"),
        ({}, "x" * 40, "signature", "signature"),
        ({"aud": "other"}, SECRET, "audience", "audience"),
        ({"iss": "mallory"}, SECRET, "issuer", "issuer"),
        ({"tenant": None}, SECRET, "claims", "'tenant'"),
        ({"roles": "admin"}, SECRET, "claims", "'roles'"),
    ],
)
def test_refused_tokens_name_why(token_claims: dict[str, Any], key: str, reason: str, message: str) -> None:
    verifier = JwtVerifier(SECRET, audience="nexus", issuer="idp", leeway_s=5)
    body = claims(aud="nexus", iss="idp") | token_claims
    with pytest.raises(AuthenticationError, match=message) as err:
        verifier.verify(jwt.encode({k: v for k, v in body.items() if v is not None}, key, "HS256"))
    assert err.value.details["reason"] == reason
    assert err.value.headers()["www-authenticate"].startswith("Bearer")


def test_token_without_exp_or_garbage_is_refused() -> None:
    verifier = JwtVerifier(SECRET)
    no_exp = {k: v for k, v in claims().items() if k != "exp"}
    with pytest.raises(AuthenticationError, match="'exp'"):
        verifier.verify(jwt.encode(no_exp, SECRET, "HS256"))
    with pytest.raises(AuthenticationError, match="not valid"):
        verifier.verify("not.a.token")


def test_clock_skew_within_leeway_is_accepted() -> None:
    token = jwt.encode(claims(exp=time.time() - 3), SECRET, "HS256")
    assert JwtVerifier(SECRET, leeway_s=10).verify(token).subject == "ann"


def test_rs256_with_a_pem_public_key_file(tmp_path: Path) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "key.pem").write_bytes(pem)
    token = jwt.encode(claims(), private, "RS256")
    assert JwtVerifier(public_key=str(tmp_path / "key.pem")).verify(token).tenant == "acme"
    assert JwtVerifier(public_key=pem.decode()).verify(token).tenant == "acme"
    with pytest.raises(AuthenticationError):  # an HS256 token signed with the PEM text must not pass
        JwtVerifier(public_key=pem.decode()).verify(jwt.encode(claims(), "x" * 40, "HS256"))


def test_es256_from_a_jwks_file_picks_the_key_by_kid(tmp_path: Path) -> None:
    keys = {kid: ec.generate_private_key(ec.SECP256R1()) for kid in ("one", "two")}
    public = {kid: json.loads(jwt.algorithms.ECAlgorithm.to_jwk(k.public_key())) for kid, k in keys.items()}
    jwks = {"keys": [jwk | {"kid": kid} for kid, jwk in public.items()]}
    (tmp_path / "jwks.json").write_text(json.dumps(jwks))
    verifier = JwtVerifier(jwks_file=tmp_path / "jwks.json")
    token = jwt.encode(claims(), keys["two"], "ES256", headers={"kid": "two"})
    assert verifier.verify(token).subject == "ann"
    wrong = jwt.encode(claims(), keys["one"], "ES256", headers={"kid": "two"})
    with pytest.raises(AuthenticationError, match="signature"):
        verifier.verify(wrong)
    unknown = jwt.encode(claims(), keys["one"], "ES256", headers={"kid": "three"})
    with pytest.raises(AuthenticationError, match="kid 'three'"):
        verifier.verify(unknown)


def test_bad_configuration_is_refused_with_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="at least 32 bytes"):
        JwtVerifier("short")
    with pytest.raises(ConfigurationError, match="one JWT key source"):
        JwtVerifier(SECRET, public_key="-----BEGIN PUBLIC KEY-----")
    with pytest.raises(ConfigurationError, match="cannot read"):
        JwtVerifier(public_key=str(tmp_path / "missing.pem"))
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ConfigurationError, match="not a usable JWKS"):
        JwtVerifier(jwks_file=tmp_path / "bad.json")


def test_a_remembered_token_still_expires() -> None:
    verifier = JwtVerifier(SECRET, leeway_s=0)
    token = jwt.encode(claims(exp=time.time() + 1), SECRET, "HS256")
    assert verifier.verify(token).subject == "ann"
    assert verifier.verify(token).subject == "ann"  # from memory
    time.sleep(1.1)
    with pytest.raises(AuthenticationError, match="expired"):
        verifier.verify(token)
