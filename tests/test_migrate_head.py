"""The schema's newest revision is known without alembic, and is alembic's head.

Every command checks the database is up to date; one read of
``alembic_version`` answers when it is (store/migrate.py), so ``HEAD`` must
move with each new migration.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.script import ScriptDirectory

from mailbeacon.store import make_engine, migrate, upgrade


def test_head_is_the_newest_migration() -> None:
    scripts = ScriptDirectory(str(Path(migrate.__file__).with_name("migrations")))
    assert scripts.get_heads() == [migrate.HEAD]


def test_a_database_at_head_is_checked_without_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    engine = make_engine(url)
    assert migrate.current(engine) is None
    upgrade(engine)
    assert migrate.current(engine) == migrate.HEAD
    engine.dispose()
    check = (
        "import sys; from mailbeacon.store import make_engine, upgrade; "
        f"upgrade(make_engine({url!r})); print('alembic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr
