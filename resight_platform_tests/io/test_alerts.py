"""Alert delivery by email over STARTTLS to a local SMTP server with a certificate from a CA made
in the test: verified, refused when the CA is not trusted, and never a password in clear."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from resight_platform.io.alerts import Failure, Message, group_failures, send_email, smtp_tls_context
from resight_platform.settings import AlertSettings
from resight_platform_tests.alert_servers import Mailbox, TlsFiles, local_ca, serve_mailbox

USER, PASSWORD = "alerts", "smtp-Pa55-in-test"
MESSAGE = Message("[resight ERROR] job: 1 run(s) failed", "[ERROR] 1 run(s) of job failed.", ("1",))


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return local_ca(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def mailbox(tls: TlsFiles) -> Iterator[Mailbox]:
    with serve_mailbox(tls, login=(USER, PASSWORD)) as box:
        yield box


def _settings(box: Mailbox, ca_file: Path | None, *, starttls: bool = True, password: str = PASSWORD) -> AlertSettings:
    return AlertSettings(
        smtp_host="127.0.0.1",
        smtp_port=box.port,
        smtp_user=USER,
        smtp_password=password,
        smtp_starttls=starttls,
        smtp_ca_file=ca_file,
        email_to=("oncall@resight.example",),
    )


def test_starttls_verifies_the_certificate_and_logs_in(mailbox: Mailbox, tls: TlsFiles) -> None:
    send_email(_settings(mailbox, tls.ca_cert), MESSAGE)
    assert [m["Subject"] for m in mailbox.messages] == [MESSAGE.subject]
    assert mailbox.logins == [(USER, True)]


def test_a_certificate_from_an_untrusted_ca_is_refused(mailbox: Mailbox) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        send_email(_settings(mailbox, None), MESSAGE)
    assert mailbox.messages == [] and mailbox.logins == []


def test_a_password_is_never_sent_without_tls(mailbox: Mailbox, tls: TlsFiles) -> None:
    with pytest.raises(ValueError, match="unencrypted"):
        send_email(_settings(mailbox, tls.ca_cert, starttls=False), MESSAGE)
    assert mailbox.messages == [] and mailbox.logins == []


def test_the_tls_context_verifies_host_and_certificate(tls: TlsFiles) -> None:
    for settings in (AlertSettings(), AlertSettings(smtp_ca_file=tls.ca_cert)):
        context = smtp_tls_context(settings)
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname


def test_a_plain_server_without_login_still_gets_mail() -> None:
    with serve_mailbox() as box:
        send_email(
            AlertSettings(smtp_host="127.0.0.1", smtp_port=box.port, email_to=("oncall@resight.example",)), MESSAGE
        )
    assert [m["Subject"] for m in box.messages] == [MESSAGE.subject]


def test_a_url_quoted_by_an_error_reaches_the_message_without_its_password() -> None:
    failure = Failure(
        key="7",
        kind="run",
        at=datetime(2026, 10, 1, tzinfo=UTC),
        job="medallion_job",
        run_id="r1",
        detail='connection to postgresql://resight:pg-Pa55@db:5432/resight failed: server closed "db"',
    )
    (message,) = group_failures([failure], "http://ui", 5)
    assert "pg-Pa55" not in message.text
    assert "postgresql://resight:***@db:5432/resight" in message.text
