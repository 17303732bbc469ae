"""A process that cannot reach PostgreSQL or Kafka at start-up says which and by which
setting, in one line (exit 1), where it printed a Kafka client's retries or a pool's
"couldn't get a connection after 30.00 sec" naming neither."""

from __future__ import annotations

from collections.abc import Iterator

import eventsourcing.persistence
import pytest
from kafka.errors import NoBrokersAvailable

from api.cli import service_problem
from infra.settings import get_settings


@pytest.fixture
def settings_from_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_kafka_that_does_not_answer_is_named_with_its_setting(settings_from_env: pytest.MonkeyPatch) -> None:
    settings_from_env.setenv("HOTLINE_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    problem = service_problem(NoBrokersAvailable())
    assert problem is not None and "127.0.0.1:1" in problem and "HOTLINE_KAFKA_BOOTSTRAP_SERVERS" in problem


def test_postgresql_that_refuses_says_why(settings_from_env: pytest.MonkeyPatch) -> None:
    settings_from_env.setenv("HOTLINE_DATABASE_URL", "postgresql://postgres:secret@127.0.0.1:1/nope")
    problem = service_problem(eventsourcing.persistence.OperationalError("couldn't get a connection after 30.00 sec"))
    assert problem is not None and "HOTLINE_DATABASE_URL" in problem and "127.0.0.1:1/nope" in problem
    assert "secret" not in problem, "the password is never printed"
    assert "refused" in problem.lower() or "failed" in problem.lower(), "the server's own reason, not the pool's timeout"


def test_other_errors_are_left_alone(settings_from_env: pytest.MonkeyPatch) -> None:
    assert service_problem(ValueError("a bug")) is None
