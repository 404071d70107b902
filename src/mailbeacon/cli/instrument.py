"""`mailbeacon instrument` (one recipient or a CSV of them) and `mailbeacon lint`."""

from __future__ import annotations

import csv
import html as htmllib
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from sqlalchemy import Engine

from mailbeacon.cli.base import (
    BaseUrlOption,
    app,
    err,
    open_store,
    out,
    parse_time,
    settings,
    tracking_base_url,
)
from mailbeacon.instrument import lint as lint_mail
from mailbeacon.instrument.detect import Kind, decode_html, sniff
from mailbeacon.messages import (
    Clicks,
    Invalid,
    NotFound,
    Pixel,
    instrument_message,
    resolve_campaign,
)
from mailbeacon.store import keys
from mailbeacon.tokens import Signer

# {{ column }} placeholders, as in Postmark, Mustache and most mail tools.
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_ -]*?)\s*\}\}")
RECIPIENT_COLUMNS = ("email", "recipient", "to", "e-mail")


def _read(path: str) -> bytes:
    """The file's bytes as they are: text mode would turn CRLF into LF, and a
    mail must come out byte-identical outside the edits."""
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:  # a mistyped path is the user's, not a bug: say which
        err.print(f"cannot read {path}: {exc.strerror or exc}; give an HTML or .eml file, or -")
        raise typer.Exit(2) from None


FORMATS = ("auto", "eml", "html")
FormatOption = Annotated[
    str,
    typer.Option(
        "--format",
        help="What SOURCE holds: eml (a whole message), html, or auto: mail headers first "
        "(an mbox 'From ' line allowed) make it a message, anything else is HTML.",
    ),
]


def _kind(fmt: str, raw: bytes) -> Kind:
    if fmt not in FORMATS:
        err.print("--format is auto, eml or html")
        raise typer.Exit(2)
    return sniff(raw) if fmt == "auto" else "eml" if fmt == "eml" else "html"


def _encode(html: str, codec: str) -> bytes:
    """Back to the file's own charset; bytes it could not decode come back as they were."""
    return html.encode(codec, "surrogateescape")


def _fill(template: str, row: dict[str, str], escape: bool, codec: str = "utf-8") -> str:
    def one(m: re.Match[str]) -> str:
        value = row.get(m.group(1).strip(), "")
        if not escape:
            return value
        # Characters the file's charset cannot hold go in as references.
        return htmllib.escape(value).encode(codec, "xmlcharrefreplace").decode(codec)

    return PLACEHOLDER.sub(one, template)


def _safe_name(n: int, recipient: str, suffix: str) -> str:
    return f"{n:05d}-{re.sub(r'[^A-Za-z0-9@._-]+', '_', recipient)[:80]}{suffix}"


@app.command()
def instrument(
    source: Annotated[str, typer.Argument(help="HTML or .eml file ('-' for standard input).")],
    to: Annotated[str | None, typer.Option("--to", help="Recipient address (one email).")] = None,
    recipients: Annotated[
        Path | None,
        typer.Option(
            help="CSV with an email column, optional subject and variant columns "
            "(A/B subject lines in one file), and one column "
            "per {{placeholder}}: renders one email per row.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    campaign: Annotated[str | None, typer.Option(help="Campaign name (created if new).")] = None,
    subject: Annotated[str | None, typer.Option(help="Subject, for your reports.")] = None,
    variant: Annotated[str | None, typer.Option(help="Variant label within the campaign.")] = None,
    sent_at: Annotated[
        str | None,
        typer.Option(
            "--sent-at",
            help="When the mail leaves "
            "(ISO 8601 or 'now'); leave out to mark hits while you compose as your own.",
        ),
    ] = None,
    clicks: Annotated[
        str,
        typer.Option(
            help="off: pixel only; safe: skip links showing a URL and "
            "unsubscribe links (default); all: every http(s) link."
        ),
    ] = "safe",
    pixel: Annotated[str, typer.Option(help="Where the pixel goes: bottom or top.")] = "bottom",
    honeypot: Annotated[
        bool, typer.Option(help="Add an invisible link only scanners follow.")
    ] = False,
    text_links: Annotated[
        bool, typer.Option("--text-links", help=".eml: also track URLs in text/plain parts.")
    ] = False,
    out_path: Annotated[
        str | None,
        typer.Option(
            "--out",
            help="Output file (one email) or "
            "directory (with --recipients). Default: standard output.",
        ),
    ] = None,
    base_url: BaseUrlOption = None,
    fmt: FormatOption = "auto",
) -> None:
    """Put a tracking pixel and tracked links into an email, for one recipient or a list."""
    if clicks not in ("off", "safe", "all") or pixel not in ("bottom", "top"):
        err.print("--clicks is off, safe or all; --pixel is bottom or top")
        raise typer.Exit(2)
    if (to is None) == (recipients is None):
        err.print("give --to ADDR for one email, or --recipients people.csv for a list")
        raise typer.Exit(2)
    if recipients is not None and not out_path:
        err.print("--recipients writes one file per person: give --out DIRECTORY")
        raise typer.Exit(2)
    when = parse_time(sent_at, "--sent-at")
    raw = _read(source)
    eml = _kind(fmt, raw) == "eml"
    template, codec = decode_html(raw)
    if eml:
        # A message is bytes in whatever charsets its parts declare: keep
        # every byte, including those that are not UTF-8.
        template, codec = raw.decode("utf-8", "surrogateescape"), "utf-8"
    if to is not None and PLACEHOLDER.search(template):
        err.print(
            "[yellow]note:[/] the template has {{placeholders}}; they are filled only with "
            "--recipients people.csv, and links containing them are left untracked"
        )
    s = settings(base_url=base_url)
    engine = open_store(s)
    signer = keys.ensure_signer(engine)
    base = tracking_base_url(engine, s)
    opts: dict[str, Any] = dict(
        subject=subject,
        variant=variant,
        sent_at=when,
        clicks=clicks,
        pixel=pixel,
        honeypot=honeypot,
        text_links=text_links,
    )
    try:
        if to is not None:
            with engine.begin() as conn:
                cid = resolve_campaign(conn, campaign)
                kind: dict[str, Any] = {"eml": raw} if eml else {"html": template}
                res = instrument_message(
                    conn, signer, base, recipient=to, campaign_id=cid, **kind, **opts
                )
            data = res.eml if res.eml is not None else _encode(res.html or "", codec)
            if out_path:
                Path(out_path).write_bytes(data)
            else:
                sys.stdout.buffer.write(data)
                sys.stdout.flush()
            _say(f"message {res.message['id']}", res.report)
            return
        assert recipients is not None and out_path is not None
        _batch(
            engine, signer, base, template, codec, eml, recipients, Path(out_path), campaign, opts
        )
    except (Invalid, NotFound) as exc:
        err.print(f"[red]{exc}[/]", soft_wrap=True)
        raise typer.Exit(2) from None


def _batch(
    engine: Engine,
    signer: Signer,
    base: str,
    template: str,
    codec: str,
    eml: bool,
    recipients: Path,
    outdir: Path,
    campaign: str | None,
    opts: dict[str, Any],
) -> None:
    try:
        with recipients.open(newline="", encoding="utf-8-sig") as fh:
            people = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise Invalid(f"{recipients}: cannot read it as UTF-8 CSV ({exc})") from None
    if not people:
        err.print(f"{recipients} has no rows")
        raise typer.Exit(2)
    columns = {c.strip().lower(): c for c in people[0]}
    email_col = next((columns[c] for c in RECIPIENT_COLUMNS if c in columns), None)
    if email_col is None:
        err.print(f"{recipients} needs an email column (one of {', '.join(RECIPIENT_COLUMNS)})")
        raise typer.Exit(2)
    missing = {m.strip() for m in PLACEHOLDER.findall(template)} - set(people[0])
    if missing:
        err.print(
            f"the template uses {', '.join('{{' + m + '}}' for m in sorted(missing))} but "
            f"{recipients} has no such column"
        )
        raise typer.Exit(2)
    outdir.mkdir(parents=True, exist_ok=True)
    suffix = ".eml" if eml else ".html"
    started = time.perf_counter()
    # Files go to a scratch directory first and are moved into place only
    # after the transaction commits: no file for a message that does not
    # exist, and no need to hold 10k rendered emails in memory.
    scratch = Path(tempfile.mkdtemp(prefix=".mailbeacon-", dir=outdir))
    first: dict[str, Any] = {}
    no_pixel = 0
    try:
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=True,
        ) as bar:
            task = bar.add_task("instrumenting", total=len(people))
            with engine.begin() as conn:  # one transaction: every message or none
                cid = resolve_campaign(conn, campaign)
                for n, row in enumerate(people, 1):
                    body = _fill(template, row, escape=not eml, codec=codec)
                    kind: dict[str, Any] = {"eml": body} if eml else {"html": body}
                    # A/B subject lines in one file: a row's own subject and
                    # variant columns win over --subject / --variant.
                    per_row = {
                        k: (row.get(columns[k]) or "").strip() or opts[k]
                        for k in ("subject", "variant")
                        if k in columns
                    }
                    try:
                        res = instrument_message(
                            conn,
                            signer,
                            base,
                            recipient=row[email_col] or "",
                            campaign_id=cid,
                            **kind,
                            **{**opts, **per_row},
                        )
                    except (Invalid, NotFound) as exc:
                        # Line n + 1 of the file: the header is line 1. Nothing is written.
                        raise Invalid(
                            f"{recipients} row {n + 1}: {exc}; fix that row and run again "
                            "(no email was written)"
                        ) from None
                    data = res.eml if res.eml is not None else _encode(res.html or "", codec)
                    (scratch / _safe_name(n, row[email_col], suffix)).write_bytes(data)
                    first = first or res.report
                    no_pixel += not res.report["pixel_added"]
                    bar.advance(task)
        for path in scratch.iterdir():
            path.replace(outdir / path.name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    took = time.perf_counter() - started
    out.print(
        f"{len(people)} emails written to {outdir} in {took:.1f} s"
        + (f" (campaign {campaign})" if campaign else "")
    )
    # One template: what happened to the first email happened to all of them,
    # unless the filled-in values changed it.
    _say("the first", first)
    if no_pixel:
        err.print(f"{no_pixel} of {len(people)} emails have no pixel", markup=False)


def _say(who: str, report: dict[str, Any]) -> None:
    """What instrumenting did, a line for the mail and one per link left alone."""
    pixel = (
        f"pixel added ({report['pixel']})"
        if report["pixel_added"]
        else f"NO pixel: {report['pixel']}"
    )
    left = report["left_alone"]
    lines = [f"{who}: {pixel}; {report['links_tracked']} links tracked, {len(left)} left alone"]
    for item in left:
        detail = f" {item['detail']}" if item["detail"] else ""
        lines.append(f"  left alone ({item['reason']}{detail}): {item['url']}")
    lines += [f"  note: {note}" for note in report["notes"]]
    for line in lines:
        err.print(line, markup=False, highlight=False, soft_wrap=True)


@app.command()
def lint(
    sources: Annotated[
        list[str], typer.Argument(help="HTML or .eml files ('-' for standard input).")
    ],
    from_domain: Annotated[
        str | None,
        typer.Option(
            "--from-domain",
            help="Your From domain, to check the tracking domain is aligned with it.",
        ),
    ] = None,
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="Tracking domain to check.")
    ] = None,
    fmt: FormatOption = "auto",
) -> None:
    """List deliverability risks, a line each (exit status 1 when there are any).

    The tracking-domain alignment is one setting, not one per mail: it is
    said once per run, at the first mail that uses the tracking domain.
    """
    any_found = False
    aligned_said = False
    for source in sources:
        raw = _read(source)
        found = lint_mail(
            raw, tracking_base_url=base_url, from_domain=from_domain, kind=_kind(fmt, raw)
        )
        for f in found:
            if f.code == "tracking-domain-unaligned":
                if aligned_said:
                    continue
                aligned_said = True
            any_found = True
            print(f"{source}:{f.line}: {f.code}: {f.message}")
    if not any_found:
        out.print("no deliverability risks found")
    raise typer.Exit(1 if any_found else 0)


__all__ = ["Clicks", "Pixel"]
