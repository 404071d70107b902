"""Reply detection: a sender's mailbox, watched read-only over IMAP.

- ``url``: the ``imap://`` / ``imaps://`` URL a mailbox is added with.
- ``classify``: human reply, auto-reply or bounce, from header fields (pure).
- ``match``: which tracked message a mail answers (pure).
- ``imap``: the read-only IMAP session (EXAMINE, BODY.PEEK, SEARCH, IDLE).
- ``watcher``: one mailbox's loop, and the node's supervisor with its leases.
"""
