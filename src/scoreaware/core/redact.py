"""Keep secrets out of logs, error messages and sidecars: one scrubber for every output.

Servers can echo request headers in their error text (a reason phrase, an HTML error page),
so any text that came back from a server is passed through `redact` before it is logged or
shown: the known secret values in every form a server or a library may print them, and
anything shaped like a bearer token or an API key.

A secret is known when it is passed to `redact` or was `register`-ed where it was parsed (the
captioning engine registers the password of ``--base-url`` and the API key it reads): the
root command's error handler, the provenance sidecars and the engines' failures all scrub
registered secrets without having to be handed them. Each secret is removed as written, URL-
encoded (``%40`` for ``@``, ``+`` or ``%20`` for a space), JSON-escaped (``\\u00e9``), and, for
``user:password`` credentials, as the password alone and as the Basic token
(base64 of ``user:password``, padded or not, UTF-8 or Latin-1).
"""

from __future__ import annotations

import base64
import json
import re
import urllib.parse

MIN_SECRET = 4  # shorter strings would scrub ordinary words
_REGISTERED: set[str] = set()

_RULES = [
    # userinfo of a URL (http://user:password@host): everything up to the last "@" of the authority (a
    # password may hold "@" itself); the user name can be a token too
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s?#]*@"), r"\1***@"),
    (re.compile(r"(?i)(authorization\s*[:=]\s*)(?:(?:bearer|basic|token)\s+)?[^\s,;'\"}]+"), r"\1***"),
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{6,}"), "Bearer ***"),
    (re.compile(r"(?i)((?:api[_-]?key|access[_-]?token|secret|password)[\"']?\s*[:=]\s*[\"']?)[^\s,;&\"'}]+"),
     r"\1***"),
    (re.compile(r"\b(?:sk|hf|ghp|gho)[-_][A-Za-z0-9_-]{8,}"), "***"),
]


def secret_forms(secret: str) -> set[str]:
    """Every spelling of `secret` an output may carry (see the module docstring)."""
    if not secret:
        return set()
    forms = {secret}
    if ":" in secret:  # user:password credentials: the password alone, and the Basic token
        password = secret.split(":", 1)[1]
        forms.add(password)
        for encoding in ("utf-8", "latin-1"):
            try:
                token = base64.b64encode(secret.encode(encoding)).decode()
            except UnicodeEncodeError:
                continue
            forms |= {token, token.rstrip("=")}
    for form in list(forms):
        forms |= {urllib.parse.quote(form, safe=""), urllib.parse.quote_plus(form, safe=""),
                  urllib.parse.quote(form), json.dumps(form)[1:-1], json.dumps(form, ensure_ascii=False)[1:-1]}
    return {f for f in forms if len(f) >= MIN_SECRET}


def register(*secrets: str | None) -> None:
    """Remember `secrets`: every later `redact` removes them (a process-wide set)."""
    for secret in secrets:
        if secret:
            _REGISTERED.update(secret_forms(secret))


def redact(text: object, *secrets: str | None) -> str:
    """`text` with every given or registered secret (in all its forms) and every token-shaped
    string replaced by ``***``."""
    out = str(text)
    forms = set(_REGISTERED)
    for secret in secrets:
        if secret:
            forms |= secret_forms(secret)
    for form in sorted(forms, key=len, reverse=True):  # longest first: a token before the password inside it
        out = out.replace(form, "***")
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
