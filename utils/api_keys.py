"""API keys: which clients may spend the seller's quota.

Keys come from API_KEYS (comma-separated, in clear) and API_KEYS_FILE (one SHA-256 hex digest
per line, `#` comments): only digests are kept in memory, and a presented key is hashed and
compared with every digest in constant time (hmac.compare_digest), so neither the timing nor a
log line tells anything about the keys.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from pathlib import Path

_DIGEST = re.compile(r"^(?:sha256:)?([0-9a-fA-F]{64})$")


class ApiKeyError(ValueError):
    """The keys file cannot be read or holds something that is not a SHA-256 digest."""


def digest(key: str) -> str:
    """The SHA-256 hex digest of `key`, as written in API_KEYS_FILE."""
    return hashlib.sha256(key.encode()).hexdigest()


def read_digests(path: str) -> list[str]:
    """The digests in an API_KEYS_FILE; ApiKeyError naming the line that is not one."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ApiKeyError(f"cannot read API_KEYS_FILE {path}: {type(exc).__name__}") from None
    digests = []
    for number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        match = _DIGEST.match(text)
        if match is None:
            raise ApiKeyError(f"API_KEYS_FILE {path} line {number} is not a SHA-256 hex digest (64 hex digits)")
        digests.append(match.group(1).lower())
    return digests


class ApiKeys:
    """The accepted keys, as digests."""

    def __init__(self, keys: Iterable[str] = (), digests: Iterable[str] = ()) -> None:
        self._digests = [bytes.fromhex(d) for d in {*(digest(k) for k in keys), *digests}]

    @property
    def enabled(self) -> bool:
        """True when at least one key is configured: every request but the open ones must carry one."""
        return bool(self._digests)

    def __len__(self) -> int:
        return len(self._digests)

    def identify(self, presented: str | None) -> str | None:
        """A short id of the key (its digest's first 12 hex digits) if `presented` is accepted, else None."""
        if not presented:
            return None
        candidate = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).digest()
        found = None
        for known in self._digests:  # every digest is compared: the time does not depend on which matched
            if hmac.compare_digest(candidate, known):
                found = known
        return found.hex()[:12] if found else None
