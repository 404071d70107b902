"""Stored secrets are sealed with a key outside the database."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from mailbeacon import config, secretbox


def _settings(tmp_path: Path, key: str = "") -> config.Settings:
    return config.load(data_dir=str(tmp_path), secret_key=key or None)


def test_key_file_is_created_0600_on_first_seal_and_reused(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    with pytest.raises(secretbox.SecretKeyError, match="no secret key"):
        secretbox.load(s)  # opening never invents a key
    sealed = secretbox.load(s, create=True).seal("hunter2!")
    path = tmp_path / "secret.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "hunter2" not in sealed
    assert secretbox.load(s).open(sealed) == "hunter2!"
    assert secretbox.load(s, create=True).open(sealed) == "hunter2!"  # same key kept


def test_setting_key_wins_and_a_wrong_key_is_one_line(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    sealed = secretbox.load(_settings(tmp_path, key)).seal("pw")
    assert not (tmp_path / "secret.key").exists()
    other = secretbox.load(_settings(tmp_path), create=True)
    with pytest.raises(secretbox.SecretKeyError) as exc:
        other.open(sealed)
    assert "\n" not in str(exc.value) and "senders set" in str(exc.value)


def test_malformed_key_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(secretbox.SecretKeyError, match="Fernet.generate_key"):
        secretbox.load(_settings(tmp_path, "not-a-key"))


def test_env_variable_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("MAILBEACON_SECRET_KEY", key)
    box = secretbox.load(config.load(data_dir=str(tmp_path)))
    assert secretbox.SecretBox(key).open(box.seal("x")) == "x"


def test_the_relay_reads_the_key_each_message_and_keeps_what_it_opened(tmp_path: Path) -> None:
    """relay/accounts.py upstream_of keeps opened passwords, per key: a key
    file replaced (or removed) counts from the next message on."""
    from mailbeacon.relay.accounts import Upstream, upstream_of
    from mailbeacon.store.senders import Sender

    s = _settings(tmp_path)
    sealed = secretbox.load(s, create=True).seal("pw")
    sender = Sender(1, "a@example.com", "x", "smtp://a@h.example:587", sealed, "opens", (), None, 0)
    want = Upstream("h.example", 587, "starttls", "a", "pw")
    assert upstream_of(sender, s) == want
    assert upstream_of(sender, s) == want  # kept
    key = tmp_path / "secret.key"
    (tmp_path / "new.key").write_text(Fernet.generate_key().decode())
    (tmp_path / "new.key").replace(key)  # another file (read_key knows it by inode, mtime, size)
    with pytest.raises(secretbox.SecretKeyError, match="do not open"):
        upstream_of(sender, s)
    key.unlink()
    with pytest.raises(secretbox.SecretKeyError, match="no secret key"):
        upstream_of(sender, s)
    plain = Sender(2, "b@example.com", "x", "smtp://h.example:587", None, "opens", (), None, 0)
    assert upstream_of(plain, s) == Upstream("h.example", 587, "starttls")
