"""Passwords, secret query parameters and webhook tokens masked in URLs and in free text."""

from __future__ import annotations

import pytest

from resight_platform.redact import redact, redact_text


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://resight:s3cret@db:5432/resight", "postgresql://resight:***@db:5432/resight"),
        ("postgresql+psycopg2://u:p%40ss@/dagster?host=/tmp/s", "postgresql+psycopg2://u:***@/dagster?host=/tmp/s"),
        ("postgresql://u@db/x?sslmode=require&password=s3cret", "postgresql://u@db/x?sslmode=require&password=***"),
        ("https://hooks.slack.com/services/T0/B0/s3cret", "https://hooks.slack.com/services/***"),
        ("http://mlflow:s3cret@mlflow.internal:5000/", "http://mlflow:***@mlflow.internal:5000/"),
        ("postgresql://resight@db/resight", "postgresql://resight@db/resight"),
        ("s3://bucket/lake", "s3://bucket/lake"),
        ("sc://spark.internal:15002/;use_ssl=true;token=s3cret", "sc://spark.internal:15002/;use_ssl=true;token=***"),
        ("sc://127.0.0.1:15002", "sc://127.0.0.1:15002"),
        ("/srv/resight/lake", "/srv/resight/lake"),
    ],
)
def test_redact(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_redact_text_masks_every_url_in_a_message() -> None:
    text = 'connect to "postgresql://a:s3cret@h/db" failed; retry http://u:s3cret2@h:1/x later'
    assert redact_text(text) == 'connect to "postgresql://a:***@h/db" failed; retry http://u:***@h:1/x later'
    assert redact_text("no url here") == "no url here"
