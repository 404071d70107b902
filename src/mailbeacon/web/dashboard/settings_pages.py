"""Settings: API keys, webhooks and their delivery log, network lists, privacy."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mailbeacon.node import Node
from mailbeacon.notify import EVENT_TYPES, deliver, email_settings
from mailbeacon.secretbox import SecretKeyError
from mailbeacon.store import keys
from mailbeacon.store import messages as message_store
from mailbeacon.store import networks as network_store
from mailbeacon.store import outbox as ns
from mailbeacon.web.api import ApiError
from mailbeacon.web.api_hooks import check_webhook
from mailbeacon.web.dashboard import alerts, times
from mailbeacon.web.dashboard.auth import Post, User
from mailbeacon.web.dashboard.render import not_found, page
from mailbeacon.web.deps import NodeDep

router = APIRouter()


def settings_page(request: Request, node: Node, status: int = 200, **extra: Any) -> HTMLResponse:
    s = node.settings
    lists = network_store.list_info(node.engine)
    with node.engine.connect() as conn:
        campaigns = message_store.list_campaigns(conn)
    now = time.time()
    for item in lists:
        item["age_days"] = (now - item["loaded_at"]) / 86400
    ctx = {
        "api_keys": keys.list_api_keys(node.engine),
        "webhooks": ns.list_webhooks(node.engine),
        "event_types": EVENT_TYPES,
        "networks": lists,
        "active": sorted(node.networks().names().items()),
        "privacy": {
            "store_ip": s.store_ip,
            "retention_days": s.retention_days,
        },
        "smtp": email_settings.effective(node.engine, s),
        "smtp_security": email_settings.SECURITY,
        "emails": ns.deliveries(node.engine, channel="email", limit=10),
        "saved_zone": times.saved(request),
        "alert_prefs": alerts.load(node.engine, request.state.mb_session.user_id),
        "alert_events": alerts.EVENTS,
        "alert_scopes": alerts.SCOPES,
        "campaigns": campaigns,
        **extra,
    }
    return page(request, "settings.html", ctx, status=status)


@router.get("/settings", response_class=HTMLResponse, include_in_schema=False)
def settings(request: Request, _user: User, node: NodeDep) -> HTMLResponse:
    return settings_page(request, node)


@router.post("/settings/timezone", response_class=HTMLResponse, include_in_schema=False)
def set_zone(request: Request, posted: Post, node: NodeDep) -> HTMLResponse:
    """Empty: follow the browser's zone; a zone that does not exist is refused."""
    name = posted.form.get("tz", "").strip()
    if not name:
        keys.delete_setting(node.engine, times.setting_name(posted.session.user_id))
        return settings_page(request, node, zone_saved_as="")
    try:
        found = times.save(request, posted.session.user_id, name)
    except ValueError as exc:
        return settings_page(request, node, 422, zone_error=str(exc), zone_input=name[:64])
    return settings_page(request, node, zone=found, zone_saved_as=found)


@router.post("/settings/notifications", response_class=HTMLResponse, include_in_schema=False)
def set_alerts(request: Request, posted: Post, node: NodeDep) -> HTMLResponse:
    prefs = alerts.clean(
        posted.lists.get("events") or [],
        posted.form.get("scope", ""),
        posted.lists.get("campaigns") or [],
    )
    alerts.save(node.engine, posted.session.user_id, prefs)
    return settings_page(request, node, alerts_saved=True)


@router.post("/settings/email", response_class=HTMLResponse, include_in_schema=False)
def set_email(request: Request, posted: Post, node: NodeDep) -> HTMLResponse:
    """Saved in the store: this process applies it at once, every other
    one within a refresh, the delivery worker at its next email."""
    f = posted.form
    fields = {k: f.get(k, "") for k in ("host", "port", "security", "user", "sender", "to")}
    try:
        email_settings.save(node.engine, node.settings, password=f.get("password", ""), **fields)
    except (ValueError, SecretKeyError) as exc:
        typed = {k: v[:320] for k, v in fields.items()}
        return settings_page(request, node, 422, email_error=str(exc), email_input=typed)
    node.reload_email()
    return settings_page(request, node, email_note="Saved. Email notices use these settings now.")


@router.post("/settings/email/forget", response_class=HTMLResponse, include_in_schema=False)
def forget_email(request: Request, _posted: Post, node: NodeDep) -> HTMLResponse:
    email_settings.forget(node.engine)
    node.reload_email()
    return settings_page(request, node, email_note="Forgotten: the config file's settings apply.")


@router.post("/settings/email/test", response_class=HTMLResponse, include_in_schema=False)
def test_email(request: Request, _posted: Post, node: NodeDep) -> HTMLResponse:
    """Send one email now through the settings in effect, and say how it went."""
    cfg = email_settings.effective(node.engine, node.settings)
    if not cfg.on:
        return settings_page(
            request, node, 422, email_error="Set an SMTP server and an address to send to first."
        )
    try:
        deliver.send_email(cfg.opened(node.settings), deliver.test_email(cfg, node.base_url))
    except Exception as exc:  # noqa: BLE001 - any SMTP/socket error is the answer
        why = " ".join(str(exc).split())[:300] or type(exc).__name__
        return settings_page(
            request,
            node,
            502,
            email_error=f"The test email was not sent ({why}): check the host, port, "
            "security and login.",
        )
    return settings_page(
        request, node, email_note=f"Test email sent to {cfg.to} through {cfg.host}:{cfg.port}."
    )


@router.post("/settings/keys", response_class=HTMLResponse, include_in_schema=False)
def new_key(request: Request, posted: Post, node: NodeDep) -> HTMLResponse:
    name = posted.form.get("name", "").strip()[:200]
    if not name:
        return settings_page(request, node, 422, error="Give the key a name.")
    _key, secret = keys.create_api_key(node.engine, name)
    return settings_page(request, node, 201, new_key=secret, new_key_name=name)


@router.post("/settings/keys/{key_id}/revoke", include_in_schema=False)
def revoke_key(key_id: int, _posted: Post, node: NodeDep) -> Response:
    keys.revoke_api_key(node.engine, str(key_id))
    return RedirectResponse("/settings#keys", status_code=303)


@router.post("/settings/webhooks", response_class=HTMLResponse, include_in_schema=False)
def new_webhook(request: Request, posted: Post, node: NodeDep) -> HTMLResponse:
    url = posted.form.get("url", "").strip()
    events = posted.lists.get("events") or []
    try:
        if not events:
            raise ApiError(422, "invalid", "choose at least one event type")
        check_webhook(url, events, node.settings.webhook_allow_internal)
    except ApiError as exc:
        return settings_page(request, node, 422, error=exc.message)
    hook = ns.create_webhook(node.engine, url, events)
    return settings_page(request, node, 201, new_webhook=hook)


@router.post("/settings/webhooks/{webhook_id}/delete", include_in_schema=False)
def delete_webhook(webhook_id: int, _posted: Post, node: NodeDep) -> Response:
    ns.delete_webhook(node.engine, webhook_id)
    return RedirectResponse("/settings#webhooks", status_code=303)


@router.get("/settings/webhooks/{webhook_id}", response_class=HTMLResponse, include_in_schema=False)
def webhook_log(request: Request, webhook_id: int, _user: User, node: NodeDep) -> HTMLResponse:
    hook = ns.get_webhook(node.engine, webhook_id, deleted=True)
    if hook is None:
        return not_found(request, f"No webhook {webhook_id}.")
    log = ns.deliveries(node.engine, webhook_id=webhook_id, limit=200)
    return page(request, "webhook.html", {"hook": hook, "log": log})


@router.post("/settings/deliveries/{delivery_id}/replay", include_in_schema=False)
def replay(delivery_id: int, _posted: Post, node: NodeDep) -> Response:
    old = ns.get_delivery(node.engine, delivery_id)
    ns.replay(node.engine, delivery_id)
    back = "/settings"
    if old and old["webhook_id"]:
        back = f"/settings/webhooks/{old['webhook_id']}"
    return RedirectResponse(back, status_code=303)
