"""Sign-in from the command line: ``hotline token``, ``hotline keys``, ``hotline staff``.

``hotline token`` signs with the data folder's keys, so the server of the same data
folder accepts what it prints (scripts, tests, a first administrator's session).
"""

from __future__ import annotations

import typer
from rich.console import Console

from api.cli.shell import refusals, refuse
from infra.settings import get_settings

commands = typer.Typer()
keys = typer.Typer(help="The embedded issuer's signing keys (rotate, retire, list)")
staff = typer.Typer(help="Staff accounts: enrol one (the first administrator, or a script)")
commands.add_typer(keys, name="keys")
commands.add_typer(staff, name="staff")
console = Console()


@commands.command("token")
def token(
    sub: str = typer.Option(..., "--sub", help="Subject: a username, an agent id"),
    role: list[str] = typer.Option(..., "--role", help="A role (repeat for several)"),
    department: list[str] = typer.Option([], "--department", help="A department acted for (repeat for several)"),
    citizen: str | None = typer.Option(None, "--citizen", help="The citizen id (role citizen)"),
    name: str | None = typer.Option(None, "--name"),
    ttl: int = typer.Option(3600, "--ttl", min=1, max=30 * 86400, help="Seconds until it expires"),
) -> None:
    """Print a bearer token the server of this data folder accepts."""
    from domain.base import ROLES
    from infra.identity.keys import Keyring
    from infra.identity.tokens import TokenIssuer

    settings = get_settings()
    unknown = [r for r in role if r not in ROLES]
    if unknown:
        raise typer.BadParameter(f"unknown roles {unknown}; one of {', '.join(ROLES)}", param_hint="--role")
    issuer = TokenIssuer(Keyring(settings.keys_dir), settings.token_issuer, settings.oidc_audience)
    print(issuer.issue(sub, role, ttl=ttl, departments=department, citizen_id=citizen, name=name))


@keys.command("list")
def list_keys() -> None:
    """The signing keys, oldest first (the last one signs)."""
    from infra.identity.keys import Keyring

    for kid in Keyring(get_settings().keys_dir).kids:
        console.print(kid)


@keys.command("rotate")
def rotate() -> None:
    """A new signing key; tokens signed by the older ones stay valid until retired."""
    from infra.identity.keys import Keyring

    console.print(f"signing with {Keyring(get_settings().keys_dir).rotate()}")


@keys.command("retire")
def retire(kid: str) -> None:
    """Stop accepting tokens signed by KID (after they have expired)."""
    from infra.identity.keys import Keyring

    try:
        Keyring(get_settings().keys_dir).retire(kid)
    except KeyError:
        refuse(f"no signing key {kid!r} (hotline keys list shows them)")
    except ValueError as exc:  # the only key
        refuse(str(exc))
    console.print(f"retired {kid}")


@staff.command("enrol")
def enrol(
    username: str,
    name: str = typer.Option(..., "--name"),
    role: list[str] = typer.Option(..., "--role"),
    department: list[str] = typer.Option([], "--department"),
    password: str = typer.Option(..., "--password", prompt=True, hide_input=True, confirmation_prompt=True),
) -> None:
    """Enrol a staff member with a password (as the system: for the first administrator)."""
    from pydantic import SecretStr

    from domain.base import SYSTEM
    from domain.identity.commands import EnrollStaff
    from infra.runtime import Hotline

    with refusals():
        cmd = EnrollStaff(username=username, name=name, roles=role, departments=department, password=SecretStr(password))
    hotline = Hotline.start(get_settings())
    try:
        with refusals():
            result = hotline.bus.execute(cmd, SYSTEM).result
    finally:
        hotline.close()
    console.print(f"enrolled {result['username']}: {', '.join(result['roles'])}")
