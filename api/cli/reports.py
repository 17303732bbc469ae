"""``hotline report …``, ``hotline ingest`` and ``hotline erlang-c``: the analysts' CLI.

hotline report list
hotline report daily --from 2026-11-01 --to 2026-11-08 --by day --format table   (local days: HOTLINE_TIME_ZONE)
hotline report service_level --by hour --format png --out sl.png
hotline report save my_sl --sql "SELECT … FROM contacts_between(\\$from, \\$to)" \\
        --formula "sl=fast/answered" --col-format sl=percent
hotline ingest [--parquet DIR]
hotline erlang-c --calls 100 --interval 1800 --aht 180 --target-sl 0.8 --shrinkage 0.3
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from typer.core import TyperGroup

from analytics import kpis
from analytics.kpis import KpiParams
from analytics.reports import MEDIA_TYPES, RUN_PARAMETERS, ReportError, Reports, SavedReport, SavedReports, format_value, render
from api.cli.shell import shell_actor
from infra.settings import Settings, get_settings

console = Console(stderr=True)
out_console = Console(width=None if sys.stdout.isatty() else 250)  # pipes get whole rows


class _ReportGroup(TyperGroup):
    """``hotline report NAME …`` runs report NAME unless NAME is one of the subcommands."""

    # (typer vendors its own click: Any keeps the override valid for either.)
    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            return "run", self.commands["run"], args
        return super().resolve_command(ctx, args)


commands = typer.Typer()
report_app = typer.Typer(cls=_ReportGroup, help="Reports over the analytics database (run `hotline report list`).", no_args_is_help=True)
commands.add_typer(report_app, name="report")


def _saved_store(settings: Settings) -> SavedReports:
    from infra.read_store import make_engine

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SavedReports(make_engine(settings.read_store_url, 2))


def _reports(settings: Settings) -> Reports:
    # Local days of the hotline's time zone, as the API's and the console's reports; its
    # messages name the window's bounds by this command's options.
    return Reports(settings.duckdb_path, _saved_store(settings), time_zone=settings.time_zone, bound_names=("--from", "--to"))


FORMATS = ("table", *MEDIA_TYPES)
BINARY = ("parquet", "png")  # never to a terminal: these need --out


def _refuse(message: str) -> NoReturn:
    """A usage error said in one line (exit status 2, as click's)."""
    console.print(f"[red]{escape(message)}[/]", soft_wrap=True)  # not wrapped at the terminal's width
    raise typer.Exit(2)


def _check_bound(option: str, value: str | None) -> None:
    try:
        if value is not None:
            kpis.as_utc_naive(value)
    except kpis.OutOfRange as exc:  # e.g. 0001-01-01T00:00+01:00: a valid time, before the year 1 in UTC
        _refuse(f"{option} {value}: {exc}")
    except ValueError:
        _refuse(
            f"{option} {value!r}: give a date (2026-11-26) or an ISO 8601 time (2026-11-26T08:00, local; "
            "2026-11-26T07:00Z or +01:00 with an offset)"
        )


def catch_up(settings: Settings, *, show_progress: bool = True, parquet: Path | None = None) -> int | None:
    """Embedded mode: bring DuckDB up to date with the event store. Returns the position,
    or None when another process (the API) owns the analytics database (it keeps it fresh)."""
    import duckdb

    from analytics.ingest import InProcessAnalytics
    from infra.eventstore import EventStore

    if settings.database_url is None and not settings.sqlite_events_path.exists():
        console.print(f"[yellow]no event store at {settings.sqlite_events_path}: run `hotline demo` first[/]")
        return None
    store = EventStore(settings)
    try:
        try:
            ingest = InProcessAnalytics(store, settings.duckdb_path, snapshot_interval=0)
        except (duckdb.IOException, duckdb.TransactionException):
            # The API owns the file (a lock at open, or at the first commit when the open
            # fell between two of the API's own checkpoints): its snapshot is fresh enough.
            console.print("[dim]analytics database in use by another process: reading its latest snapshot[/]")
            return None
        try:
            start, target = ingest.applied_position, store.max_position()
            if show_progress and target - start > 0:
                with Progress(
                    TextColumn("ingest"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TextColumn("events"),
                    TimeRemainingColumn(),
                    console=console,
                ) as bar:
                    task = bar.add_task("ingest", total=target - start)
                    position = ingest.catch_up(progress=lambda pos, tgt: bar.update(task, completed=pos - start, total=tgt - start))
            else:
                position = ingest.catch_up()
            ingest.analytics.publish_snapshot(force=True)
            if parquet is not None:
                with Progress(TextColumn("export {task.description}"), BarColumn(), MofNCompleteColumn(), console=console) as bar:
                    task = bar.add_task("parquet", total=1)
                    files = ingest.analytics.export_parquet(
                        parquet, progress=lambda name, i, n: bar.update(task, completed=i, total=n, description=name)
                    )
                console.print(f"Parquet files: {', '.join(str(f) for f in files)}")
            return position
        finally:
            ingest.close()
    finally:
        store.close()


def print_table(result: Any) -> None:
    table = Table(
        title=result.title,
        caption=", ".join(f"{k}={format_value(v, None)}" for k, v in result.params.items() if k in ("from", "to", "by")),
    )
    for c in result.columns:
        table.add_column(c, justify="left" if c == result.columns[0] else "right")
    for r in result.rows:
        table.add_row(*(format_value(v, result.formats.get(c)) for c, v in zip(result.columns, r, strict=True)))
    out_console.print(table)
    for section in result.sections:  # e.g. the knowledge report's unanswered queries
        print_table(section)


@report_app.command("run", hidden=True)
def run_report(
    name: str = typer.Argument(..., help="Report name (see `hotline report list`)"),
    from_: str | None = typer.Option(
        None,
        "--from",
        help="Start: a date or an ISO time, local (the hotline's time zone) unless it has an offset. "
        "Default: whole local days ending with the latest data",
    ),
    to: str | None = typer.Option(None, "--to", help="End, exclusive (read as --from)"),
    by: str | None = typer.Option(
        None, "--by", help="hour, interval, day, week, month, total, queue, channel, agent, department, category …"
    ),
    fmt: str = typer.Option("table", "--format", "-f", help="table, csv, json, parquet, png, html"),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write to this file (default: stdout; png/parquet need --out)"),
    # Checked against the API's ranges (RUN_PARAMETERS) below, refused in one line.
    sl_threshold: float = typer.Option(RUN_PARAMETERS["sl_threshold"].default, help="Service-level threshold, seconds"),
    short_abandon: float = typer.Option(
        RUN_PARAMETERS["short_abandon"].default, help="Abandons shorter than this are not counted, seconds"
    ),
    fcr_days: int = typer.Option(int(RUN_PARAMETERS["fcr_days"].default), help="FCR: no repeat within this many days"),
    repeat_days: int = typer.Option(int(RUN_PARAMETERS["repeat_days"].default), help="Repeat complaints: look back this many days"),
    target_sl: float = typer.Option(RUN_PARAMETERS["target_sl"].default, help="staffing: service-level target"),
    shrinkage: float = typer.Option(RUN_PARAMETERS["shrinkage"].default, help="staffing: shrinkage"),
    refresh: bool = typer.Option(True, "--catch-up/--no-catch-up", help="Embedded mode: ingest new events first"),
) -> None:
    """Run a standard or saved report."""
    # Usage errors before any work (and before anything is written).
    if fmt not in FORMATS:
        _refuse(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    if fmt in BINARY and out is None:
        _refuse(f"--format {fmt} writes a binary file: give --out FILE")
    _check_bound("--from", from_)
    _check_bound("--to", to)
    given = {"sl_threshold": sl_threshold, "short_abandon": short_abandon, "fcr_days": fcr_days,
             "repeat_days": repeat_days, "target_sl": target_sl, "shrinkage": shrinkage}  # fmt: skip
    for param, value in given.items():
        if problem := RUN_PARAMETERS[param].problem(value):
            _refuse(f"--{param.replace('_', '-')} {value:g}: {problem}")
    settings = get_settings()
    if refresh and settings.kafka_bootstrap_servers is None:
        catch_up(settings)
    params = KpiParams(sl_threshold_seconds=sl_threshold, short_abandon_seconds=short_abandon, fcr_days=fcr_days, repeat_days=repeat_days)
    try:
        result = _reports(settings).run(name, from_, to, by, params, {"target_sl": target_sl, "shrinkage": shrinkage})
        if fmt == "table":
            print_table(result)
            return
        data = render(result, fmt)
    except ReportError as e:
        _refuse(e.message)
    if out is None:
        sys.stdout.write(data.decode())
    else:
        out.write_bytes(data)
        console.print(f"{name}: {len(result.rows)} rows → {out}")


@report_app.command("list")
def list_reports(as_json: bool = typer.Option(False, "--json")) -> None:
    """Standard and saved reports."""
    items = _reports(get_settings()).list()
    if as_json:
        out_console.print_json(json.dumps(items))
        return
    table = Table(title="Reports")
    for c in ("name", "kind", "title", "by"):
        table.add_column(c)
    for r in items:
        table.add_row(r["name"], r["kind"], r["title"] or "", ", ".join(r.get("by", [])))
    out_console.print(table)


def _pairs(values: list[str], what: str) -> dict[str, str]:
    out = {}
    for v in values:
        if "=" not in v:
            _refuse(f"{what} must look like name=value, not {v!r}")
        k, _, val = v.partition("=")
        out[k.strip()] = val.strip()
    return out


@report_app.command("save")
def save_report(
    name: str = typer.Argument(...),
    sql: str | None = typer.Option(
        None, "--sql", help="One SELECT over the fact views; parameters $from, $to, $by, $sl_threshold, $short_abandon"
    ),
    sql_file: Path | None = typer.Option(None, "--sql-file"),
    title: str | None = typer.Option(None),
    description: str | None = typer.Option(None),
    formula: list[str] = typer.Option([], "--formula", help="column=SQL expression over the result's columns (repeatable)"),
    col_format: list[str] = typer.Option([], "--col-format", help="column=percent|seconds|number|integer|text|datetime"),
    chart: str | None = typer.Option(None, help="kind:x:y1,y2 e.g. line:day:sl"),
) -> None:
    """Validate (read-only, time-limited test run) and save a report."""
    if (sql is None) == (sql_file is None):
        _refuse("give --sql or --sql-file")
    if sql is not None:
        text = sql
    else:
        assert sql_file is not None
        try:
            text = sql_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:  # missing, a folder, unreadable, not UTF-8
            _refuse(f"--sql-file {sql_file}: cannot be read ({getattr(exc, 'strerror', None) or exc})")
    chart_spec = None
    if chart:
        kind, _, rest = chart.partition(":")
        x, _, ys = rest.partition(":")
        chart_spec = {"kind": kind, "x": x or None, "y": [y for y in ys.split(",") if y]}
    report = SavedReport(
        name=name, sql=text, title=title, description=description,
        formulas=_pairs(formula, "--formula"), formats=_pairs(col_format, "--col-format"), chart=chart_spec,
        owner=shell_actor("analyst").id,  # another owner's report of the same name is not replaced
    )  # fmt: skip
    settings = get_settings()
    try:
        sample = _reports(settings).save(report)
    except ReportError as e:
        _refuse(f"not saved: {e.message}")
    console.print(f"saved report [bold]{name}[/]: columns {', '.join(sample.columns)}; test run gave {len(sample.rows)} rows")


@report_app.command("delete")
def delete_report(
    name: str,
    any_owner: bool = typer.Option(False, "--any-owner", help="Also delete a report someone else saved"),
) -> None:
    """Delete a saved report (your own, unless --any-owner)."""
    me = shell_actor("analyst").id

    def owners_only(report: SavedReport) -> None:
        if not any_owner and report.owner not in (None, me):
            raise ReportError(f"{name!r} belongs to {report.owner}: pass --any-owner to delete it anyway", status=403)

    try:
        deleted = _saved_store(get_settings()).delete(name, owners_only)
    except ReportError as e:
        _refuse(f"not deleted: {e.message}")
    if not deleted:
        _refuse(f"no saved report {name!r}: see `hotline report list`")  # the operator's input: exit 2
    console.print(f"deleted report [bold]{name}[/]")


@commands.command()
def ingest(
    parquet: Path | None = typer.Option(None, "--parquet", help="Also export the fact views as Parquet files into this folder"),
) -> None:
    """One-off catch-up: ingest new events from the event store into DuckDB (embedded mode)."""
    settings = get_settings()
    position = catch_up(settings, parquet=parquet)
    if position is None:
        raise typer.Exit(1)
    console.print(f"analytics at position {position}: {settings.duckdb_path} (readers: the .snapshot file)")


@commands.command("erlang-c")
def erlang_c(
    calls: float = typer.Option(..., help="Contacts per interval"),
    interval: float = typer.Option(1800, help="Interval length, seconds"),
    aht: float = typer.Option(..., help="Average handle time, seconds"),
    agents: int | None = typer.Option(None, help="Evaluate this many agents instead of finding the number needed"),
    target_sl: float = typer.Option(0.8),
    target_seconds: float = typer.Option(20.0),
    shrinkage: float = typer.Option(0.0),
) -> None:
    """Erlang C: agents needed for a service-level target (or the figures for N agents)."""
    from analytics import erlang

    try:
        s = (
            erlang.evaluate(calls, interval, aht, agents, target_seconds, shrinkage)
            if agents is not None
            else erlang.agents_needed(calls, interval, aht, target_sl, target_seconds, shrinkage)
        )
    except ValueError as e:
        console.print(f"[red]{e}[/]")
        raise typer.Exit(2) from None
    out_console.print_json(json.dumps(s.as_dict()))
