"""``hotline recordings …``: the retention rule of call recordings (domain/recordings)."""

from __future__ import annotations

import json

import typer

from api.cli.shell import positive
from infra.settings import get_settings

commands = typer.Typer()
recordings = typer.Typer(help="Call recordings: retention (supervised and disputed cases keep theirs)")
commands.add_typer(recordings, name="recordings")


@recordings.command("retention")
def retention(
    days: float = typer.Option(None, help="Delete recordings completed this many days ago (HOTLINE_RECORDINGS_RETENTION_DAYS)"),
) -> None:
    """Apply the retention rule once: the deletion is an event, then the audio goes."""
    from infra.recordings import apply_recording_retention
    from infra.runtime import Hotline

    positive(days, "--days")
    hotline = Hotline.start(get_settings())
    try:
        outcome = apply_recording_retention(hotline, days)
    finally:
        hotline.close()
    typer.echo(
        json.dumps(
            {
                "cutoff": outcome["cutoff"],
                "deleted": len(outcome["deleted"]),
                "kept": len(outcome["kept"]),
                "audio_deleted": outcome["audio_deleted"],
            }
        )
    )
