"""Real mail servers for tests: private Postfix, Dovecot and spamd instances.

Each pytest process (each xdist worker) starts its own, on loopback, on ports
picked at run time, with every file under one temp dir
(`/tmp/mailbeacon-mail-XXXXXXXX/`, see common.py), and stops them at the end.
Fixtures (in fixtures.py, registered for every test by tests/conftest.py):

- `dovecot` -> Dovecot: IMAP on `dovecot.imap_port` (plain, STARTTLS offered)
  and `dovecot.imaps_port`; `add_user()`, `imap_url()`, `imap()`,
  `deliver()` (LMTP), `store()` (straight into the maildir), `messages()`,
  `flags()`, `restart()`.
- `postfix` -> Postfix: the upstream SMTP server, delivering into `dovecot`;
  `url()`, `port()`, `client()`, `received()`, `wait_for()`, `stop()`,
  `start()`; `reject*@`, `defer*@` and `bounce*@` recipients fail on purpose.
- `spam_rules(raw) -> (score, {rule names})`: Debian's SpamAssassin rules.
- `mail_tls` -> TLSFiles: the CA (`ca_file`, `client_context()`) both
  servers' certificates chain to.

The servers are shared by the tests of one process: use fresh addresses
(`dovecot.address("ana")`), and a test that stops a server gets it started
again after it (on the same ports) even if it fails midway.
"""

from tests.mailservers.common import HOST, MailServerError, TLSFiles
from tests.mailservers.dovecot import Dovecot
from tests.mailservers.maildir import StoredMessage
from tests.mailservers.postfix import BOUNCE, DEFER, REJECT, Postfix
from tests.mailservers.spamassassin import SpamAssassin

__all__ = [
    "BOUNCE",
    "DEFER",
    "HOST",
    "REJECT",
    "Dovecot",
    "MailServerError",
    "Postfix",
    "SpamAssassin",
    "StoredMessage",
    "TLSFiles",
]
