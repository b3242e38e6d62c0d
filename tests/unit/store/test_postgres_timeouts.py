"""The PostgreSQL backend does not wait for ever on a server that does not answer: it
connects with a timeout and TCP keepalives (a store that died without closing its
connections is noticed), and a URL's own settings win."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from nexus_ray.errors import ConfigurationError, StoreUnavailableError
from nexus_ray.store.backends import CONNECTION_DEFAULTS, PostgresBackend, connection_settings


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections (the kernel does) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def test_a_server_that_never_answers_is_a_store_failure_after_the_connect_timeout(
    silent_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, the store thread waited for the answer for ever: every run of the host hung."""
    monkeypatch.setitem(CONNECTION_DEFAULTS, "connect_timeout", "1")
    outcome: list[BaseException] = []

    def connect() -> None:
        try:
            PostgresBackend(f"postgresql://nexus@127.0.0.1:{silent_server}/db")
        except BaseException as exc:
            outcome.append(exc)

    waiting = threading.Thread(target=connect, daemon=True)  # daemon: the old code never returned
    waiting.start()
    waiting.join(10)
    assert outcome, "still waiting for a server that never answers"
    assert isinstance(outcome[0], StoreUnavailableError) and "timeout" in outcome[0].message


def test_timeouts_and_keepalives_are_set_unless_the_url_sets_them() -> None:
    settings = connection_settings("postgresql://nexus@db:5432/nexus")
    assert settings["connect_timeout"] == "10" and settings["keepalives"] == "1"
    assert settings["keepalives_idle"] == "30" and settings["tcp_user_timeout"] == "30000"
    own = connection_settings("postgresql://nexus@db/nexus?connect_timeout=3&keepalives=0")
    assert own["connect_timeout"] == "3" and own["keepalives"] == "0"


def test_a_url_libpq_refuses_is_a_configuration_error_naming_it_without_its_password() -> None:
    with pytest.raises(
        ConfigurationError, match=r"not a PostgreSQL URL libpq accepts \(postgresql://nexus:\*\*\*@db"
    ) as info:
        PostgresBackend("postgresql://nexus:secret@db/nexus?colour=blue")
    assert "secret" not in info.value.message and "colour" in info.value.message
