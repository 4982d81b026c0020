"""Sending mail through the SMTP server of BASTION_SMTP_URL (aiosmtplib).

aiosmtplib rather than smtplib in a thread: a send is then a task of the event loop, with its own timeout,
that shutdown can cancel (cleanup_ctx); a thread blocked on a silent server could be neither cancelled nor
waited for, and would hold the daemon's exit. The schemes say what people expect of them:

- `smtp://host[:25]`: STARTTLS when the server offers it (aiosmtplib's default), plain otherwise;
- `smtp+starttls://host[:587]`: STARTTLS required (a server that does not offer it is an error);
- `smtps://host[:465]`: TLS from the first byte.

A user name and password in the URL (percent-encoded) log in after TLS is up. Certificates are checked
against the system's CAs (`SSL_CERT_FILE` points elsewhere).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

import aiosmtplib

TIMEOUT_S = 20
_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


@dataclass(frozen=True)
class SmtpMailer:
    hostname: str
    port: int
    use_tls: bool
    start_tls: bool | None  # None: when offered
    sender: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_url(cls, url: str, sender: str) -> SmtpMailer:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        return cls(
            hostname=parts.hostname or "localhost", port=parts.port or _PORTS[scheme], use_tls=scheme == "smtps",
            start_tls={"smtp": None, "smtp+starttls": True, "smtps": False}[scheme], sender=sender,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )

    async def send(self, to: str, subject: str, text: str) -> None:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.sender, to, subject
        message.set_content(text)
        await aiosmtplib.send(
            message, hostname=self.hostname, port=self.port, username=self.username, password=self.password,
            use_tls=self.use_tls, start_tls=self.start_tls, timeout=TIMEOUT_S,
        )
