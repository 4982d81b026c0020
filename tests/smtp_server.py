"""A real SMTP server for the mail tests (aiosmtpd), keeping every message it is given."""

from __future__ import annotations

import email
import email.policy
import ipaddress
import re
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import free_port


@dataclass
class Inbox:
    messages: list[EmailMessage] = field(default_factory=list)
    url: str = ""

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd's handler hook
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.messages.append(message)
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]

    def link(self, message: EmailMessage) -> str:
        found = re.search(r"https?://\S+#token=\S+", message.get_content())
        assert found, message.get_content()
        return found[0]

    def token(self, message: EmailMessage) -> str:
        return self.link(message).split("#token=", 1)[1]


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as files (the certificate is its own CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bastion test SMTP")])
    moment = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(moment - timedelta(minutes=5))
        .not_valid_after(moment + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


@contextmanager
def smtp_server(tls: str | None = None, certificate: tuple[Path, Path] | None = None) -> Iterator[Inbox]:
    """An SMTP server on a spare port of 127.0.0.1 (its own thread and loop), stopped afterwards. `tls`:
    None (plain, no STARTTLS offered), "starttls" (offered and required before mail) or "implicit" (TLS from
    the first byte), with `certificate` (files of `self_signed`)."""
    inbox = Inbox()
    port = free_port()
    options: dict = {}
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*map(str, certificate))
        options = {"ssl_context": context} if tls == "implicit" else {"tls_context": context, "require_starttls": True}
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    scheme = {None: "smtp", "starttls": "smtp+starttls", "implicit": "smtps"}[tls]
    inbox.url = f"{scheme}://127.0.0.1:{port}"
    try:
        yield inbox
    finally:
        controller.stop()
