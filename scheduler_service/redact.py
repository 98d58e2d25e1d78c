"""Keep secrets out of what we show: URL passwords, secret options, secrets inside free text.

Used by the job stores (their URLs, options and driver errors) and by the run records (a job's
secret references); it imports nothing of ours, so anything may use it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

# scheme:// then the userinfo (everything up to the last "@" before the path): "user:password".
_USERINFO = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/?#]*)@")
# ?password=..., &ssl_password=..., ?auth_key=... (drivers accept secrets as query options too)
_SECRET_PARAM = re.compile(r"(?i)(?P<key>[?&][^=&#]*(?:password|passwd|pwd|auth_key)=)[^&#]*")

# option names whose values are secrets; URLs inside free text (driver error messages)
_SECRET_KEY = re.compile(r"(?i)password|passwd|pwd|auth_key|secret|token")
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")


def redact_url(url: str) -> str:
    """Return ``url`` with its password (in the userinfo or a query option) replaced by ``***``."""
    match = _USERINFO.match(url)
    if match and ":" in match["userinfo"]:
        user = match["userinfo"].split(":", 1)[0]
        url = f"{match['head']}{user}:***@{url[match.end() :]}"
    return _SECRET_PARAM.sub(r"\g<key>***", url)


def secrets_in(options: Mapping[str, Any]) -> tuple[str, ...]:
    """Return the passwords in store ``options`` (secret keys, URL userinfo, ZooKeeper auth)."""
    found: list[str] = []
    for key, value in options.items():
        if isinstance(value, str) and _SECRET_KEY.search(key):
            found.append(value)
        elif isinstance(value, str) and "://" in value:
            try:
                password = urlsplit(value).password
            except ValueError:
                continue
            found += [password, unquote(password)] if password else []
        elif key == "auth_data" and isinstance(value, list | tuple):
            found += [str(credential).partition(":")[2] for _, credential in value]
    return tuple(secret for secret in found if secret)


def mask(text: str, secrets: Iterable[str]) -> str:
    """Return ``text`` with each of ``secrets`` (the longest first) replaced by ``***``."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Return ``text`` with URL passwords and each of ``secrets`` replaced by ``***``."""
    return mask(_URL_IN_TEXT.sub(lambda match: redact_url(match[0]), text), secrets)
