"""URLs and text fit to print: the password of a URL, a ``password=`` query parameter, a Spark
Connect URL's ``;token=`` and the path of a webhook (whose token it is) replaced by ``***``. Used
wherever a URL reaches a person, a log or an exception message."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["MASK", "redact", "redact_text"]

MASK = "***"
#: Query parameters that carry a secret (libpq's ``password``, signed URLs' signatures, tokens).
_SECRET_PARAMETERS = frozenset({"password", "pass", "pwd", "secret", "token", "signature", "x-amz-signature"})
#: Hosts whose URL path is the secret (Slack-compatible incoming webhooks).
_WEBHOOK_PATH = re.compile(r"^/(services|hooks|webhook|webhooks)/", re.IGNORECASE)
#: A URL in free text: a scheme, ``://``, then anything up to white space or a quote.
_URL_IN_TEXT = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")


def redact(url: str) -> str:
    """``url`` with its password (and any secret query parameter or webhook path) masked:
    ``postgresql://resight:***@db:5432/resight``. Text that is not a URL is returned unchanged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    if not parts.scheme or not parts.netloc:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{host}" if colon else f"{userinfo}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() in _SECRET_PARAMETERS for k, _ in pairs):
            query = urlencode([(k, MASK if k.lower() in _SECRET_PARAMETERS else v) for k, v in pairs], safe="/*")
    path = parts.path
    if parts.scheme == "sc" and ";" in path:
        # Spark Connect: parameters after the path, ``sc://host:15002/;token=…;user_id=…``.
        head, *params = path.split(";")
        masked = [
            f"{name}={MASK}" if sep and name.lower() in _SECRET_PARAMETERS else f"{name}{sep}{value}"
            for name, sep, value in (param.partition("=") for param in params)
        ]
        path = ";".join([head, *masked])
    if parts.scheme in ("http", "https") and _WEBHOOK_PATH.match(path):
        path = f"/{path.split('/')[1]}/{MASK}"
    return urlunsplit(parts._replace(netloc=netloc, query=query, path=path))


def redact_text(text: str) -> str:
    """``text`` with every URL in it redacted (:func:`redact`): for exception messages and log
    lines that may quote a connection string."""
    return _URL_IN_TEXT.sub(lambda match: redact(match.group(0)), text)
