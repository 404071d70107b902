"""The README's commands run as written: every ```sh block, in order, in a
fresh directory with its own data directory, against the `serve` the quick
start starts (on a free port instead of 8000, which the README's URLs are
rewritten to). Installing (`pip install .`), the test and bench scripts are
not run here; `events --follow` runs once instead of forever."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import LISTENING

pytestmark = pytest.mark.process  # runs the README's commands against the `serve` they start

ROOT = Path(__file__).resolve().parents[1]
SKIP = ("pip install", "scripts/test", "bench/")
SERVE = ".venv/bin/mailbeacon serve"
PASSWORD = "a long passphrase"


def sh_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


@pytest.fixture
def readme_dir(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    venv = ROOT / ".venv"
    if not (venv / "bin" / "mailbeacon").exists():
        pytest.skip("needs the project's .venv (scripts/test makes it)")
    (tmp_path / ".venv").symlink_to(venv)
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    env = {**os.environ, "MAILBEACON_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "80"}
    for var in ("MAILBEACON_DB", "MAILBEACON_CONFIG", "MAILBEACON_BASE_URL"):
        env.pop(var, None)
    yield tmp_path, env


def test_readme_commands_run_as_written(readme_dir: tuple[Path, dict[str, str]]) -> None:
    work, env = readme_dir
    blocks = [b for b in sh_blocks() if not any(s in b for s in SKIP)]
    assert any(b.strip() == SERVE for b in blocks), "the quick start starts the server"
    text = "\n".join(blocks)
    for shown in ("users create --email", "mailbeacon demo", "instrument examples/"):
        assert shown in text, shown
    assert "http://127.0.0.1:8000/" in (ROOT / "README.md").read_text()

    server: subprocess.Popen[bytes] | None = None
    log = work / "serve.log"
    port = 0
    try:
        for block in blocks:
            if block.strip() == SERVE:
                with log.open("wb") as fh:
                    server = subprocess.Popen(
                        ["bash", "-c", block],
                        cwd=work,
                        env={**env, "MAILBEACON_PORT": "0"},
                        stdout=fh,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                deadline = time.monotonic() + 60
                while not (found := LISTENING.search(log.read_text(errors="replace"))):
                    assert server.poll() is None, log.read_text()
                    assert time.monotonic() < deadline, log.read_text()
                    time.sleep(0.1)
                port = int(found.group(1))
                continue
            assert port, "a command block came before the server started"
            script = block.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
            script = script.replace(" --follow", "")
            proc = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", script],
                cwd=work,
                env=env,
                input=f"{PASSWORD}\n{PASSWORD}\n",
                capture_output=True,
                text=True,
                timeout=180,
            )
            said = proc.stdout + proc.stderr
            assert proc.returncode == 0 and "Traceback" not in said, f"{block}\n---\n{said}"
            if "mailbeacon demo" in block:
                assert "Created campaign" in said
            if "curl" in block:
                assert '"open_url"' in said and '"next_cursor"' in said
            if "instrument examples/" in block:
                assert "pixel added" in said and (work / "tracked.html").exists()
        # The URL the quick start ends on: the dashboard, asking to sign in,
        # and the user the README made signs in.
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as browser:
            r = browser.get("/", follow_redirects=True)
            assert r.status_code == 200 and "/login" in str(r.url)
            csrf = re.search(r'name="csrf" value="([^"]+)"', r.text)
            assert csrf, r.text[:500]
            signed_in = browser.post(
                "/login",
                data={"email": "you@example.com", "password": PASSWORD, "csrf": csrf.group(1)},
            )
            assert signed_in.status_code == 303, signed_in.text[:500]
            home = browser.get("/")
            assert home.status_code == 200 and "Demo: spring newsletter" in home.text
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
