"""Keep secrets out of log lines: a logging filter that masks them wherever they appear."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

# Login with Amazon tokens: access tokens start "Atza|", refresh tokens "Atzr|".
_LWA_TOKEN = re.compile(r"Atz[ar]\|[A-Za-z0-9_\-.~+/=|%]+")
MASK = "[REDACTED]"


class SecretFilter(logging.Filter):
    """Replace known secret values and anything shaped like an LWA token with [REDACTED]."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """`text` with every secret masked."""
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return _LWA_TOKEN.sub(MASK, text)

    def filter(self, record: logging.LogRecord) -> bool:
        """Render the message once, masked; keep the record."""
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        clean = self.redact(message)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        return True


def mask_url_password(url: str) -> str:
    """`url` with the password of its user part replaced by ***, e.g. redis://:***@host:6379/0."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))
