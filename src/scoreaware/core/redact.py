"""Keep secrets out of logs, error messages and sidecars.

Servers can echo request headers in their error text (a reason phrase, an HTML error page),
so any text that came back from a server is passed through `redact` before it is logged or
shown: the known secret values, and anything shaped like a bearer token or an API key.
"""

from __future__ import annotations

import re
import urllib.parse

_RULES = [
    # userinfo of a URL (http://user:password@host): the whole of it, the user name can be a token too
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]+@"), r"\1***@"),
    (re.compile(r"(?i)(authorization\s*[:=]\s*)(?:(?:bearer|basic|token)\s+)?[^\s,;'\"}]+"), r"\1***"),
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{6,}"), "Bearer ***"),
    (re.compile(r"(?i)((?:api[_-]?key|access[_-]?token|secret|password)[\"']?\s*[:=]\s*[\"']?)[^\s,;&\"'}]+"),
     r"\1***"),
    (re.compile(r"\b(?:sk|hf|ghp|gho)[-_][A-Za-z0-9_-]{8,}"), "***"),
]


def redact(text: object, *secrets: str | None) -> str:
    """`text` with every given secret and every token-shaped string replaced by ``***``."""
    out = str(text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            out = out.replace(secret, "***")
    for pattern, replacement in _RULES:
        out = pattern.sub(replacement, out)
    return out


def split_userinfo(url: str) -> tuple[str, str | None]:
    """(`url` without ``user:password@``, ``"user:password"`` or None): credentials go in a header,
    never in a URL that is logged or recorded."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    credentials = f"{urllib.parse.unquote(parts.username or '')}:{urllib.parse.unquote(parts.password or '')}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)), credentials
