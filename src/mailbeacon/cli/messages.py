"""`mailbeacon campaign`, `message` and `events`."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Column, Table

from mailbeacon.cli.base import (
    BaseUrlOption,
    app,
    campaign_app,
    err,
    message_app,
    open_store,
    out,
    parse_time,
    settings,
    tracking_base_url,
)
from mailbeacon.cli.event_table import event_table, who
from mailbeacon.messages import (
    Invalid,
    NotFound,
    check_campaign_name,
    create_message,
    resolve_campaign,
)
from mailbeacon.reports import messages as message_find
from mailbeacon.sent_at import mark_sent, parse_when
from mailbeacon.store import events as event_store
from mailbeacon.store import keys
from mailbeacon.store import messages as store
from mailbeacon.store import networks as network_store
from mailbeacon.timefmt import iso, parse

# --- campaigns and messages -----------------------------------------------------


@campaign_app.command("new")
def campaign_new(name: str) -> None:
    """Create a campaign."""
    try:
        name = check_campaign_name(name)
    except Invalid as exc:
        err.print(str(exc))
        raise typer.Exit(2) from None
    engine = open_store(settings())
    try:
        with engine.begin() as conn:
            row = store.create_campaign(conn, name)
    except store.Conflict as exc:
        err.print(str(exc))
        raise typer.Exit(1) from None
    out.print(f"campaign {row['id']}: {name}")


@campaign_app.command("list")
def campaign_list(
    archived: Annotated[
        bool, typer.Option("--archived", help="Include archived campaigns.")
    ] = False,
) -> None:
    """List campaigns with their message counts (archived ones with --archived)."""
    engine = open_store(settings())
    with engine.connect() as conn:
        rows = store.list_campaigns(conn, include_archived=archived)
    table = Table("id", "name", "messages", "created")
    for r in rows:
        name = r["name"] + (" (archived)" if r.get("archived_at") else "")
        table.add_row(str(r["id"]), name, str(r["messages"]), iso(r["created_at"]) or "")
    out.print(table)


@message_app.command("new")
def message_new(
    to: Annotated[str, typer.Option("--to", help="Recipient address.")],
    subject: Annotated[str | None, typer.Option(help="Subject, for your reports.")] = None,
    campaign: Annotated[str | None, typer.Option(help="Campaign name (created if new).")] = None,
    variant: Annotated[str | None, typer.Option(help="Variant label within the campaign.")] = None,
    sent_at: Annotated[
        str | None,
        typer.Option(
            "--sent-at", help="When the mail leaves (ISO 8601 or 'now'). Leave out while composing."
        ),
    ] = None,
    link: Annotated[
        list[str] | None, typer.Option("--link", help="A URL to track (repeatable).")
    ] = None,
    base_url: BaseUrlOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON.")] = False,
) -> None:
    """Create a tracked message: prints the pixel snippet and the tracked links."""
    s = settings(base_url=base_url)
    engine = open_store(s)
    signer = keys.ensure_signer(engine)
    when = parse_time(sent_at, "--sent-at")
    try:
        with engine.begin() as conn:
            cid = resolve_campaign(conn, campaign)
            msg = create_message(
                conn,
                signer,
                tracking_base_url(engine, s),
                recipient=to,
                subject=subject,
                campaign_id=cid,
                variant=variant,
                sent_at=when,
                links=link or [],
            )
    except (Invalid, NotFound) as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(msg, indent=2))
        return
    out.print(f"message {msg['id']} to {msg['recipient']}")
    out.print("Paste this pixel at the end of the email body (HTML):")
    print(msg["pixel_html"])
    if msg["links"]:
        out.print("Tracked links (use each in place of the URL after it):")
        for lk in msg["links"]:
            # Plain lines, not a table: a table would cut long URLs people copy.
            print(f"{lk['position']}. {lk['tracked_url']}\n   -> {lk['url']}")


@message_app.command("sent")
def message_sent(
    message_id: Annotated[int, typer.Argument(help="The message id.")],
    at: Annotated[
        str | None,
        typer.Option("--at", help="When it was sent (ISO 8601 or unix seconds). Default: now."),
    ] = None,
) -> None:
    """Record that a message was sent; its earlier hits are relabelled."""
    try:
        when = parse_when(at, parse)
    except ValueError as exc:
        err.print(f"{exc}; e.g. --at 2026-05-04T09:30:00Z")
        raise typer.Exit(2) from None
    engine = open_store(settings())
    try:
        changed = mark_sent(engine, network_store.load_set(engine), message_id, when)
    except NotFound as exc:
        err.print(f"{exc}; see `mailbeacon events`")
        raise typer.Exit(1) from None
    out.print(f"message {message_id} sent at {iso(when)}; {changed} earlier hits relabelled")


@message_app.command("list")
def message_list(
    q: Annotated[str | None, typer.Option("--q", help="Words in the recipient or subject.")] = None,
    campaign: Annotated[str | None, typer.Option(help="Campaign id or name.")] = None,
    status: Annotated[
        str | None,
        typer.Option(help="opened, clicked, not_opened or replied (people only, never machines)."),
    ] = None,
    sort: Annotated[str, typer.Option(help="last_activity or created.")] = "last_activity",
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
    cursor: Annotated[str | None, typer.Option(help="Continue after a previous page.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON.")] = False,
) -> None:
    """Find tracked messages: newest activity first, with what happened in words."""
    engine = open_store(settings())
    try:
        with engine.connect() as conn:
            found = message_find.list_messages(
                conn, q=q, campaign=campaign, status=status, sort=sort, limit=limit, cursor=cursor
            )
    except message_find.BadQuery as exc:
        err.print(f"[red]{exc}[/] (see `mailbeacon message list --help`)")
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(found, indent=2))
        return
    rows = found["messages"]
    if not rows:
        out.print("no messages match" if (q or campaign or status) else "no messages yet")
        return
    # 80 columns: the id, who, what happened in words (wrapped, never cut), when.
    table = Table(
        Column("id", no_wrap=True, justify="right"),
        Column("recipient", overflow="fold", ratio=2),
        Column("what happened", ratio=3),
        Column("last (UTC)", no_wrap=True),
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=(0, 1),
    )
    for r in rows:
        when = (r["last_activity_at"] or "")[5:16].replace("T", " ")
        table.add_row(str(r["id"]), r["recipient"], r["summary"], when)
    out.print(table)
    if found["next_cursor"]:
        out.print(f"more: --cursor {found['next_cursor']}")


@message_app.command("show")
def message_show(
    message_id: Annotated[int, typer.Argument(help="The message id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON.")] = False,
) -> None:
    """One message: who, what, when, what happened, and its tracked links."""
    engine = open_store(settings())
    with engine.connect() as conn:
        row = message_find.get_row(conn, message_id)
        lks = store.message_links(conn, message_id) if row else []
        hp = store.get_message(conn, message_id) if row else None
    if row is None:
        err.print(f"[red]no message {message_id}[/]; find it with `mailbeacon message list --q …`")
        raise typer.Exit(1)
    honeypot = hp["honeypot_position"] if hp else None
    row["links"] = [lk for lk in lks if lk["position"] != honeypot]
    if as_json:
        print(json.dumps(row, indent=2))
        return
    lines = [
        ("to", row["recipient"]),
        ("subject", row["subject"] or "(none)"),
        ("campaign", f"{row['campaign']} ({row['campaign_id']})" if row["campaign_id"] else "-"),
        ("variant", row["variant"] or "-"),
        ("created", row["created_at"] or "-"),
        ("sent", row["sent_at"] or "not marked sent (`mailbeacon message sent ID`)"),
        ("last activity", row["last_activity_at"] or "-"),
        ("what happened", row["summary"]),
    ]
    print(f"message {row['id']}")
    for name, value in lines:
        print(f"  {name + ':':<15}{value}")
    for lk in row["links"]:
        print(f"  link {lk['position']}:{' ' * 8}{lk['url']}")
    print(f"Every hit with its label: mailbeacon events --message {row['id']}")


# --- events -------------------------------------------------------------------


@app.command()
def events(
    message: Annotated[
        int | None, typer.Option("--message", help="Only this message's events.")
    ] = None,
    limit: Annotated[int, typer.Option(help="How many (oldest first after --after).")] = 100,
    after: Annotated[int, typer.Option(help="Only events with an id above this.")] = 0,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new events.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List recorded hits as a table, or tail them live with --follow."""
    engine = open_store(settings())

    def fetch(since: int, n: int) -> list[dict[str, Any]]:
        with engine.connect() as conn:
            return event_store.list_events(conn, message_id=message, after=since, limit=n)

    shown = {"header": True}

    def show(rows: list[dict[str, Any]]) -> None:
        if as_json:
            for e in rows:
                print(json.dumps(e), flush=True)
        elif rows:
            with engine.connect() as conn:
                people = who(conn, (e["message_id"] for e in rows))
            # --follow: the header once, then rows as they come.
            table = event_table(
                rows, people, header=shown["header"], with_recipient=message is None
            )
            out.print(table)
            shown["header"] = False

    if not follow:
        rows = fetch(after, limit)
        if not rows and not as_json:
            out.print("no events yet")
        show(rows)
        return
    last = after
    if not after:  # start from the newest, like `tail -f`
        last = event_store.latest_id(engine)
    if not as_json:
        out.print("following new events (Ctrl-C to stop)")
    try:
        while True:
            rows = fetch(last, 500)
            if rows:
                last = rows[-1]["id"]
                show(rows)
            else:
                time.sleep(0.5)
    except KeyboardInterrupt:
        pass
