"""The SMTP relay: a sender's mail client submits, the relay sends one
tracked copy per recipient through the sender's own upstream server.

server.py (aiosmtpd: AUTH, checks, limits) -> split.py (copies) ->
upstream.py (SMTP client) -> queue.py (retries) -> dsn.py (bounce reports).
"""
