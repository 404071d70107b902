"""`mailbeacon report`, `export`, `purge` and `recipient export|erase|optout`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Column, Table
from sqlalchemy import Engine

from mailbeacon.cli.base import app, err, open_store, out, settings
from mailbeacon.messages import Invalid, NotFound, check_recipient, resolve_campaign
from mailbeacon.reports import campaign_report
from mailbeacon.reports import export as exports
from mailbeacon.store import messages as store
from mailbeacon.store import privacy

recipient_app = typer.Typer(
    help="One person's data: export it, erase it, or stop tracking them.", no_args_is_help=True
)
app.add_typer(recipient_app, name="recipient")

BLOCKS = "▁▂▃▄▅▆▇█"
# Up to three days the sparkline shows hours (72 characters fit a terminal);
# longer campaigns are shown by day.
SPARK_HOURS = 72


def sparkline(values: list[int]) -> str:
    top = max(values, default=0)
    if top <= 0:
        return BLOCKS[0] * len(values)
    return "".join(
        " " if v <= 0 else BLOCKS[min(len(BLOCKS) - 1, (v * len(BLOCKS) - 1) // top)]
        for v in values
    )


def _campaign(engine: Engine, name_or_id: str) -> int:
    with engine.connect() as conn:
        if name_or_id.isdigit() and store.get_campaign(conn, int(name_or_id)):
            return int(name_or_id)
        try:
            cid = resolve_campaign(conn, name_or_id, create=False)
        except NotFound:
            cid = None
    if cid is None:
        err.print(f"[red]no campaign {name_or_id!r}[/] (see `mailbeacon campaign list`)")
        raise typer.Exit(1)
    return cid


def _pct(x: float) -> str:
    return f"{x * 100:.1f} %"


def _timeline(rep: dict[str, Any]) -> tuple[str, list[int]]:
    hours = rep["timeline"]
    if not hours:
        return "hourly", []
    from mailbeacon.timefmt import parse

    stamps = [int((parse(h["at"]) or 0) // 3600) for h in hours]
    if stamps[-1] - stamps[0] < SPARK_HOURS:
        by = dict(zip(stamps, (h["human_opens"] for h in hours), strict=True))
        return "hourly", [by.get(s, 0) for s in range(stamps[0], stamps[-1] + 1)]
    return "daily", [d["human_opens"] for d in rep["timeline_daily"]]


def print_report(rep: dict[str, Any], name: str) -> None:
    o, c, n = rep["opens"], rep["clicks"], rep["messages"]
    head = Table("", "messages", "rate", title=f"{name}: {n} messages", title_justify="left")
    head.add_row("opened (human open or click)", str(o["human_unique"]), _pct(o["open_rate"]))
    head.add_row(
        "opened or auto-loaded (upper bound)",
        str(o["opened_or_auto_unique"]),
        _pct(o["opened_or_auto_rate"]),
    )
    head.add_row("clicked", str(c["human_unique"]), _pct(c["click_rate"]))
    head.add_row("click-to-open", "", _pct(c["click_to_open_rate"]))
    head.add_row("human opens / clicks (events)", f"{o['human_total']} / {c['human_total']}", "")
    out.print(head)
    beside = Table("beside the rates", "opens", "clicks", "messages", title_justify="left")
    beside.add_row("machine prefetch", str(o["machine_total"]), "-", str(o["machine_unique"]))
    beside.add_row(
        "security scanner",
        str(o["scanner_total"]),
        str(c["scanner_total"]),
        str(rep["scanned_unique"]),
    )
    beside.add_row("bot", str(o["bot_total"]), str(c["bot_total"]), "")
    beside.add_row("self (you)", str(o["self_total"]), str(c["self_total"]), "")
    out.print(beside)
    kind, values = _timeline(rep)
    if values:
        out.print(f"human opens, {kind} ({rep['tz']}): {sparkline(values)}  max {max(values)}")
    # Subjects and zone names are the user's text, never rich markup.
    out.print(rep["send_time_advice"]["text"], markup=False)
    if rep["links"]:
        # 80 columns: the link wraps rather than being cut to "…/ca…".
        links = Table(
            Column("#", no_wrap=True),
            Column("link", overflow="fold"),
            Column("messages clicked", justify="right", max_width=9),
            Column("human clicks", justify="right", max_width=7),
            Column("other hits", justify="right", max_width=6),
        )
        for lk in rep["links"]:
            links.add_row(
                str(lk["position"]),
                lk["url"] or "?",
                str(lk["human_unique"]),
                str(lk["human_total"]),
                str(lk["other_total"]),
            )
        out.print(links)
    if rep["clients"]:
        clients = Table("client", "human opens", "share")
        for row in rep["clients"][:10]:
            clients.add_row(row["name"], str(row["opens"]), _pct(row["share"]))
        out.print(clients)
    if rep["variants"]:
        # 80 columns: the subject line wraps under its variant, never cut.
        var = Table(
            Column("variant · subject", ratio=1),
            Column("msgs", justify="right", no_wrap=True),
            Column("opened", justify="right", no_wrap=True),
            Column("clicked", justify="right", no_wrap=True),
            Column("p (opens)", justify="right", no_wrap=True),
            Column("winner", no_wrap=True),
        )
        for v in rep["variants"]:
            if v["winner"] or v["click_winner"]:
                win = "opens" if v["winner"] else "clicks"
            else:
                win = "too few" if v["small_sample"] else "no"
            name = v["variant"] + (f" · {v['subject']}" if v.get("subject") else "")
            var.add_row(
                name,
                str(v["messages"]),
                f"{v['opened']} {_pct(v['open_rate'])}",
                f"{v['clicked']} {_pct(v['click_rate'])}",
                f"{v['p_value']:.3g}",
                win,
            )
        out.print(var)
        if rep.get("variants_verdict"):
            out.print(rep["variants_verdict"], markup=False)
    if rep["warm_leads"]:
        leads = Table(
            Column("warm leads", overflow="fold"),
            Column("why", overflow="fold"),
            "opens",
            "clicks",
            Column("last seen (UTC)", no_wrap=True),
        )
        for r in rep["warm_leads"]:
            leads.add_row(
                r["recipient"],
                "clicked" if r["why"] == "clicked" else "came back",
                str(r["human_opens"]),
                str(r["human_clicks"]),
                (r["last_human_at"] or "")[5:16].replace("T", " "),
            )
        out.print(leads)


@app.command()
def report(
    campaign: Annotated[str, typer.Argument(help="Campaign name or id.")],
    tz: Annotated[str, typer.Option(help="Time zone for daily rows and the heatmap.")] = "UTC",
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON.")] = False,
) -> None:
    """A campaign's report: rates of real people, and what machines did beside them."""
    engine = open_store(settings())
    cid = _campaign(engine, campaign)
    try:
        with engine.connect() as conn:
            rep = campaign_report(conn, cid, tz)
    except ValueError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(rep, indent=2))
        return
    print_report(rep, campaign)


@app.command("export")
def export_cmd(
    campaign: Annotated[str, typer.Argument(help="Campaign name or id.")],
    what: Annotated[str, typer.Option(help="events or recipients.")] = "events",
    fmt: Annotated[str, typer.Option("--format", help="csv or json.")] = "csv",
    out_file: Annotated[Path, typer.Option("--out", help="File to write ('-': stdout).")] = Path(
        "-"
    ),
) -> None:
    """Export a campaign's raw events or its recipients as CSV or JSON."""
    if what not in ("events", "recipients") or fmt not in ("csv", "json"):
        err.print("[red]--what is events or recipients; --format is csv or json[/]")
        raise typer.Exit(2)
    w: Literal["events", "recipients"] = "events" if what == "events" else "recipients"
    f: Literal["csv", "json"] = "csv" if fmt == "csv" else "json"
    engine = open_store(settings())
    cid = _campaign(engine, campaign)
    rows = exports.rows(engine, cid, w)
    if str(out_file) == "-":
        for piece in exports.render(rows, w, f):
            sys.stdout.write(piece)
        return
    count = 0

    def counted() -> Any:
        nonlocal count
        for r in rows:
            count += 1
            if count % 1000 == 0:
                bar.update(task, completed=count)
            yield r

    # Opened before the bar starts: a path that cannot be written is said
    # alone (cli.main names it), not under a bar of 0 rows.
    with (
        out_file.open("w", encoding="utf-8", newline="") as fh,
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:,} rows"),
            TimeRemainingColumn(),
            console=err,
        ) as bar,
    ):
        task = bar.add_task(f"exporting {what}", total=exports.estimate(engine, cid, w) or None)
        for piece in exports.render(counted(), w, f):
            fh.write(piece)
        bar.update(task, completed=count, total=count)
    out.print(f"{count} {what} written to {out_file}")


@app.command()
def purge(
    older_than: Annotated[str, typer.Option("--older-than", help="Age such as 90d or 12h.")],
) -> None:
    """Delete raw events and webhook/email deliveries older than an age; rollups
    (and so reports) stay."""
    try:
        age = privacy.parse_age(older_than)
    except ValueError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    n = privacy.purge(open_store(settings()), age)
    out.print(
        f"{n['events']} events and {n['outbox']} deliveries older than {older_than} purged; "
        "reports are unchanged"
    )


def _address(address: str) -> str:
    try:
        return check_recipient(address)
    except Invalid as exc:
        err.print(f"{exc}, not {address!r}")
        raise typer.Exit(2) from None


@recipient_app.command("export")
def recipient_export(
    address: str,
    out_file: Annotated[Path, typer.Option("--out", help="File to write ('-': stdout).")] = Path(
        "-"
    ),
) -> None:
    """Everything stored about one address (their messages and events), as JSON."""
    address = _address(address)
    data = json.dumps(privacy.recipient_export(open_store(settings()), address), indent=2)
    if str(out_file) == "-":
        print(data)
    else:
        out_file.write_text(data + "\n", encoding="utf-8")
        out.print(f"written to {out_file}")


@recipient_app.command("erase")
def recipient_erase(address: str) -> None:
    """Delete one address's messages, links, events, deliveries and per-message rollups.

    Anonymous campaign counters stay, so totals already reported do not change.
    """
    address = _address(address)
    done = privacy.recipient_erase(open_store(settings()), address)
    out.print(
        f"erased {address}: {done['messages']} messages, {done['events']} events, "
        f"{done['deliveries']} deliveries"
    )


@recipient_app.command("optout")
def recipient_optout(
    address: str,
    undo: Annotated[bool, typer.Option("--undo", help="Track this address again.")] = False,
) -> None:
    """Stop recording hits for an address (the pixel is still served); running
    servers notice within 10 s."""
    address = _address(address)
    changed = privacy.set_optout(open_store(settings()), address, not undo)
    state = "tracked again" if undo else "opted out"
    out.print(f"{address} {state}" + ("" if changed else " (already)"))
