"""Never an open relay: every refusal with its code, through a real serve process
whose upstream is the private Postfix (nothing refused reaches a mailbox)."""

from __future__ import annotations

import datetime
import os
import smtplib
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailbeacon.relay.server import is_loopback
from tests.helpers import cli, free_port
from tests.mailservers import Dovecot, Postfix, TLSFiles
from tests.relay_helpers import Relay, mail, start_relay


@pytest.fixture
def small_relay(
    db_url: str, tmp_path: Path, postfix: Postfix, dovecot: Dovecot, mail_tls: TLSFiles
) -> Iterator[Relay]:
    """A relay to the private Postfix that takes messages up to 300 kB."""
    login, _ = dovecot.add_user(dovecot.address("ana"))
    r = start_relay(
        db_url, tmp_path, postfix.url("starttls", login), login=login, ca_file=mail_tls.ca_file,
        env={"MAILBEACON_RELAY_MAX_BYTES": "300000"},
    )  # fmt: skip
    try:
        yield r
    finally:
        r.server.stop()


def test_refusals(small_relay: Relay, postfix: Postfix, dovecot: Dovecot) -> None:
    ana, bob = small_relay.login, dovecot.address("bob")
    raw = mail(sender=ana, to=[bob])
    with small_relay.client(login=False) as smtp:
        assert smtp.has_extn("auth") and smtp.has_extn("smtputf8") and smtp.has_extn("8bitmime")
        assert smtp.mail(ana)[0] == 530
        with pytest.raises(smtplib.SMTPAuthenticationError) as exc:
            smtp.login(ana, "wrong-password")
        assert exc.value.smtp_code == 535
    with small_relay.client() as smtp:
        code, msg = smtp.mail("mallory@example.com")
        assert code == 550 and f"not an address of {ana}".encode() in msg
        smtp.rset()
        spoofed = raw.replace(f"From: Ana <{ana}>".encode(), b"From: Boss <ceo@example.com>")
        with pytest.raises(smtplib.SMTPDataError) as data_exc:
            smtp.sendmail(ana, [bob], spoofed)
        assert data_exc.value.smtp_code == 550 and b"ceo@example.com" in data_exc.value.smtp_error
        big = mail(sender=ana, to=[bob], attachment=os.urandom(300_000))
        assert smtp.esmtp_features["size"] == "300000"
        with pytest.raises(smtplib.SMTPSenderRefused) as size_exc:  # SIZE= said so at MAIL
            smtp.sendmail(ana, [bob], big)
        assert size_exc.value.smtp_code == 552
        smtp.rset()
        smtp.mail(ana)  # a client that does not say SIZE learns it after DATA
        smtp.rcpt(bob)
        assert smtp.data(big)[0] == 552
        smtp.rset()
        assert smtp.sendmail(ana, [bob], raw) == {}  # the same session, by the rules
    (only,) = postfix.wait_for(bob)[bob]
    assert only.header("Subject") == "Our proposal" and "ceo@" not in only.header("From")


def test_also_addresses_may_send(postfix_relay: Relay, postfix: Postfix, dovecot: Dovecot) -> None:
    sales, bob = dovecot.address("sales", "example.com"), dovecot.address("bob")
    cli("senders", "set", postfix_relay.login, "--also", sales, db=postfix_relay.server.db)
    raw = mail(sender=sales, to=[bob])
    assert postfix_relay.send(raw, [bob], mail_from=sales) == {}
    (got,) = postfix.wait_for(bob)[bob]
    assert got.header("Return-Path") == f"<{sales}>"


def test_wrong_passwords_are_throttled(relay: Relay) -> None:
    with relay.client(login=False) as smtp:
        started = time.monotonic()
        for _ in range(5):
            with pytest.raises(smtplib.SMTPAuthenticationError):
                smtp.login("ana@example.com", "guess")
        assert time.monotonic() - started >= 5 * 1.0  # a second per wrong guess
    with relay.client(login=False) as smtp, pytest.raises(smtplib.SMTPAuthenticationError):
        smtp.login("ana@example.com", relay.password)  # right, but locked for now


@pytest.mark.parametrize(
    ("peer", "loopback"),
    [
        (("127.0.0.1", 1), True),
        (("127.0.0.2", 1), True),
        (("::1", 1, 0, 0), True),
        (("::ffff:127.0.0.1", 1, 0, 0), True),
        (("192.0.2.7", 1), False),
        (("::ffff:192.0.2.7", 1, 0, 0), False),
        (("fe80::1%eth0", 1, 0, 2), False),
        (None, False),
    ],
)
def test_loopback_peers(peer: object, loopback: bool) -> None:
    assert is_loopback(peer) == loopback


def _outside_address() -> str | None:
    """A non-loopback address of this machine, for a client that is not on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks a route
        except OSError:
            return None
        addr = str(s.getsockname()[0])
    return None if addr.startswith("127.") else addr


def _certificate(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "relay.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = tmp_path / "relay.crt", tmp_path / "relay.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_plaintext_auth_from_outside_is_refused_tls_is_not(
    sqlite_url: str, tmp_path: Path, postfix: Postfix, dovecot: Dovecot, mail_tls: TLSFiles
) -> None:
    outside = _outside_address()
    if outside is None:
        pytest.skip("this machine has no non-loopback address (the unit test above still runs)")
    cert, key = _certificate(tmp_path)
    smtps = free_port()
    ana, _ = dovecot.add_user(dovecot.address("ana"))
    bob, cy = dovecot.address("bob"), dovecot.address("cy")
    relay = start_relay(
        sqlite_url, tmp_path, postfix.url("smtps", ana), login=ana, ca_file=mail_tls.ca_file,
        extra_args=["--smtp-host", "0.0.0.0", "--smtp-tls-cert", str(cert),
                    "--smtp-tls-key", str(key), "--smtps-port", str(smtps)],
    )  # fmt: skip
    tls = ssl.create_default_context(cafile=str(cert))
    tls.check_hostname = False
    try:
        # The client connects from the machine's own outside address: a real
        # non-loopback peer as far as the relay's socket can tell.
        with smtplib.SMTP(outside, relay.smtp_port, source_address=(outside, 0)) as smtp:
            smtp.ehlo("client.test")
            assert not smtp.has_extn("auth") and smtp.has_extn("starttls")
            code, _ = smtp.docmd("AUTH", "PLAIN AGFuYUBleGFtcGxlLmNvbQB4")
            assert code == 538
            smtp.starttls(context=tls)
            smtp.ehlo("client.test")
            assert smtp.has_extn("auth")
            smtp.login(relay.login, relay.password)
            smtp.sendmail(ana, [bob], mail(sender=ana, to=[bob]))
        with smtplib.SMTP_SSL(outside, smtps, source_address=(outside, 0), context=tls) as smtp:
            smtp.login(relay.login, relay.password)
            smtp.sendmail(ana, [cy], mail(sender=ana, to=[cy]))
        assert all(len(m) == 1 for m in postfix.wait_for([bob, cy]).values())
    finally:
        relay.server.stop()
