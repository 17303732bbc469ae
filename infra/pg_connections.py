"""Will PostgreSQL take the connections the API processes may open?

Each API process keeps two pools (the event store's and the read store's), each of up to
``pg_pool_size`` connections plus a burst overflow. ``hotline serve --workers N`` starts
N such processes; beyond the server's ``max_connections`` (less the superuser's reserve
and what is connected already) a busy moment fails requests with "too many clients".
``hotline serve`` says so before it starts, with the figures an operator needs.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.eventstore import PG_STORE_OVERFLOW
from infra.read_store import PG_READ_OVERFLOW
from infra.settings import Settings


def per_api_process(settings: Settings) -> int:
    """The most connections one API process opens: both pools full, with their overflow."""
    return 2 * settings.pg_pool_size + PG_STORE_OVERFLOW + PG_READ_OVERFLOW


@dataclass(frozen=True)
class Budget:
    needed: int  # by the API processes about to start
    max_connections: int
    reserved: int  # superuser_reserved_connections (+ reserved_connections from PostgreSQL 16)
    in_use: int  # connected now (other processes of the hotline, consoles …), this check's own excluded

    @property
    def available(self) -> int:
        return self.max_connections - self.reserved - self.in_use

    def warning(self, workers: int, settings: Settings) -> str | None:
        if self.needed <= self.available:
            return None
        return (
            f"{workers} API process(es) may open {self.needed} PostgreSQL connections "
            f"({workers} × (2 pools × HOTLINE_PG_POOL_SIZE {settings.pg_pool_size} + {PG_STORE_OVERFLOW + PG_READ_OVERFLOW} overflow)), "
            f"but the server takes {self.available} more (max_connections {self.max_connections}, "
            f"{self.reserved} reserved, {self.in_use} in use): lower HOTLINE_PG_POOL_SIZE or --workers, "
            "or raise max_connections"
        )


def budget(settings: Settings, workers: int) -> Budget:
    import psycopg

    assert settings.database_url, "the connection budget is PostgreSQL's"
    with psycopg.connect(settings.database_url, autocommit=True, connect_timeout=10) as conn:
        settings_rows: dict[str, str] = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN "
                "('max_connections', 'superuser_reserved_connections', 'reserved_connections')"
            ).fetchall()
        )
        others = "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
        row = conn.execute(others).fetchone()
    reserved = int(settings_rows.get("superuser_reserved_connections", 0)) + int(settings_rows.get("reserved_connections", 0))
    return Budget(
        needed=workers * per_api_process(settings),
        max_connections=int(settings_rows["max_connections"]),
        reserved=reserved,
        in_use=int(row[0]) if row else 0,
    )
