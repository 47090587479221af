"""Alerts that reach someone: failures grouped into a few messages, sent to a Slack-compatible
webhook and by email. No Dagster here: ``defs/alerts.py`` finds the failures (failed check
evaluations, failed runs) and keeps the cursor; this module words, groups and delivers them.

Configured from the environment only (``RESIGHT_ALERT_*``, read by ``Settings``: :class:`AlertSettings`); with
neither a webhook nor an SMTP host set, alerts are logged and nothing is sent.

**Grouping.** One message per failing check (asset and check name) and one per job whose runs
failed, however many partitions, runs or sources are involved: a bad day across 500 sources is
a message per broken rule's check, not 500. Each message says what failed, which partitions
(the first few and how many), the rules broken with their counts, and links to the runs in the UI.
"""

from __future__ import annotations

import json
import smtplib
import ssl
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from typing import Literal

from resight_platform.redact import redact_text
from resight_platform.settings import AlertSettings

__all__ = ["AlertSettings", "Failure", "Message", "group_failures", "send_email", "send_webhook", "smtp_tls_context"]

#: Partitions and runs named in one message before "and N more".
_SHOWN = 8


@dataclass(frozen=True)
class Failure:
    """One failed check evaluation or one failed run, as found in Dagster's event log."""

    key: str  # unique and stable: the event's storage id
    kind: Literal["check", "run"]
    at: datetime
    job: str | None = None
    run_id: str | None = None
    asset: str | None = None
    check: str | None = None
    severity: str = "ERROR"
    partitions: tuple[str, ...] = ()
    rules: Mapping[str, int] = field(default_factory=dict)
    failing_rows: int | None = None
    detail: str = ""

    @property
    def group(self) -> tuple[str, str]:
        return ("check", f"{self.asset}:{self.check}") if self.kind == "check" else ("run", self.job or "?")


@dataclass(frozen=True)
class Message:
    """One alert message and the failures it covers."""

    subject: str
    text: str
    failures: tuple[str, ...]


def _more(items: Sequence[str], shown: int = _SHOWN) -> str:
    head = ", ".join(items[:shown])
    return head + (f" and {len(items) - shown} more" if len(items) > shown else "")


def _run_link(ui_url: str, run_id: str) -> str:
    return f"{ui_url}/runs/{run_id}"


def _check_message(name: str, failures: Sequence[Failure], ui_url: str) -> Message:
    asset, check = name.split(":", 1)
    partitions = sorted({p for f in failures for p in f.partitions})
    rules: Counter[str] = Counter()
    for f in failures:
        rules.update(f.rules)
    rows = sum(f.failing_rows or 0 for f in failures)
    severity = "WARN" if all(f.severity == "WARN" for f in failures) else "ERROR"
    runs = sorted({f.run_id for f in failures if f.run_id})
    lines = [
        f"[{severity}] Check {check} on {asset} failed {len(failures)} time(s).",
    ]
    if partitions:
        lines.append(f"Partitions ({len(partitions)}): {_more(partitions)}")
    if rules:
        lines.append("Rules broken: " + ", ".join(f"{rule} ×{count}" for rule, count in rules.most_common(10)))
    if rows:
        lines.append(f"Failing rows: {rows}")
    details = sorted({f.detail for f in failures if f.detail})
    if details:
        lines.append("Detail: " + _more(details, 3))
    if runs:
        lines.append("Runs: " + _more([_run_link(ui_url, r) for r in runs], 5))
    else:
        lines.append(f"Asset: {ui_url}/assets/{asset}?view=checks")
    subject = f"[resight {severity}] {asset} {check}: {len(failures)} failed" + (
        f" over {len(partitions)} partitions" if partitions else ""
    )
    return Message(subject, "\n".join(lines), tuple(f.key for f in failures))


def _run_message(job: str, failures: Sequence[Failure], ui_url: str) -> Message:
    partitions = sorted({p for f in failures for p in f.partitions})
    runs = [f.run_id for f in failures if f.run_id]
    lines = [f"[ERROR] {len(failures)} run(s) of {job} failed."]
    if partitions:
        lines.append(f"Partitions ({len(partitions)}): {_more(partitions)}")
    errors = Counter(f.detail.splitlines()[0][:200] for f in failures if f.detail)
    if errors:
        lines.append("Errors: " + "; ".join(f"{e} (×{n})" for e, n in errors.most_common(3)))
    lines.append("Runs: " + _more([_run_link(ui_url, r) for r in runs], 5))
    subject = f"[resight ERROR] {job}: {len(failures)} run(s) failed"
    return Message(subject, "\n".join(lines), tuple(f.key for f in failures))


def group_failures(failures: Sequence[Failure], ui_url: str, limit: int) -> list[Message]:
    """At most ``limit`` messages for ``failures``: one per failing check and one per job with
    failed runs; past the limit, the rest share one summary message (so it is still said). Any URL
    a failure's text quotes (an error naming a connection string) has its password masked."""
    return [Message(redact_text(m.subject), redact_text(m.text), m.failures) for m in _group(failures, ui_url, limit)]


def _group(failures: Sequence[Failure], ui_url: str, limit: int) -> list[Message]:
    if limit <= 0 or not failures:
        return []
    groups: dict[tuple[str, str], list[Failure]] = defaultdict(list)
    for f in failures:
        groups[f.group].append(f)
    ordered = sorted(groups.items(), key=lambda item: (item[0][0] != "run", -len(item[1]), item[0][1]))
    messages = [
        _check_message(name, items, ui_url) if kind == "check" else _run_message(name, items, ui_url)
        for (kind, name), items in ordered[: limit if len(ordered) <= limit else limit - 1]
    ]
    rest = ordered[len(messages) :]
    if rest:
        names = [f"{name} ({len(items)})" for (_, name), items in rest]
        covered = tuple(f.key for _, items in rest for f in items)
        text = f"{len(covered)} more failures in {len(rest)} checks or jobs: {_more(names)}.\n{ui_url}/runs"
        messages.append(Message(f"[resight] {len(covered)} more failures", text, covered))
    return messages


def send_webhook(url: str, message: Message, *, timeout: float = 10.0) -> None:
    """POST ``message`` as Slack-compatible JSON (``text`` plus one section block)."""
    if not url.startswith(("https://", "http://")):
        raise ValueError("RESIGHT_ALERT_WEBHOOK_URL must be an http(s) URL")
    body = json.dumps(
        {
            "text": message.subject,
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": message.text[:2900]}}],
        }
    ).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if not 200 <= response.status < 300:
            raise OSError(f"webhook answered {response.status}")


def smtp_tls_context(settings: AlertSettings) -> ssl.SSLContext:
    """The TLS context of STARTTLS: the system's trusted CAs (plus ``smtp_ca_file`` when set),
    the certificate and the host name verified. There is no setting that turns verification off."""
    context = ssl.create_default_context()
    if settings.smtp_ca_file is not None:
        context.load_verify_locations(cafile=str(settings.smtp_ca_file))
    return context


def send_email(settings: AlertSettings, message: Message, *, timeout: float = 10.0) -> None:
    """Send ``message`` to ``settings.email_to`` through the configured SMTP server: over
    STARTTLS with a verified certificate when ``smtp_starttls`` is set (:func:`smtp_tls_context`).
    A password is never sent over a connection that is not encrypted."""
    assert settings.smtp_host is not None
    if settings.smtp_password and not settings.smtp_starttls:
        raise ValueError(
            "RESIGHT_ALERT_SMTP_PASSWORD is set without RESIGHT_ALERT_SMTP_STARTTLS: refusing to send it unencrypted"
        )
    email = EmailMessage()
    email["Subject"] = message.subject
    email["From"] = settings.email_from
    email["To"] = ", ".join(settings.email_to)
    email.set_content(message.text)
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout) as smtp:
        if settings.smtp_starttls:
            smtp.starttls(context=smtp_tls_context(settings))
        if settings.smtp_user and settings.smtp_password:
            smtp.login(settings.smtp_user, settings.smtp_password)
        smtp.send_message(email)
