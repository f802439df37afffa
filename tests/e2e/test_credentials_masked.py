"""A Kafka password given to the command line never appears in what it prints: not in the
error line, not in log lines (text or json, at DEBUG, aiokafka's own included), not in a
traceback, not in serve's settings line; whether the broker is unreachable, refuses the
credentials, or the URL is refused before anything is opened."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eventbatch.logs import configure
from eventbatch.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SECRET = "Hunter2-s3cr3t"


def run(url: str, *args: str, level: str = "DEBUG", fmt: str = "text") -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "eventbatch", "--log", url, "--log-level", level, "--log-format", fmt, *args],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120,
    )
    return done.returncode, done.stdout + done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize("command", [("serve", "--cluster", "none"), ("events", "tail")])
def test_an_unreachable_broker_is_named_without_the_password(command: tuple[str, ...], fmt: str) -> None:
    url = f"kafka://svc:{SECRET}@127.0.0.1:1/events?security_protocol=SASL_PLAINTEXT&connect_timeout=0.5"

    status, said = run(url, *command, fmt=fmt)

    assert status == 2, said
    assert said.splitlines()[-1].startswith("eventbatch: error: cannot reach Kafka broker 127.0.0.1:1"), said
    assert SECRET not in said


@pytest.mark.kafka
def test_a_broker_that_refuses_the_credentials_is_named_without_the_password(kafka_bootstrap: str, tmp_path: Path) -> None:
    password_file = tmp_path / "password"
    password_file.write_text(SECRET + "\n")
    urls = [
        f"kafka://svc:{SECRET}@{kafka_bootstrap}/events?security_protocol=SASL_PLAINTEXT&connect_timeout=1",
        f"kafka://{kafka_bootstrap}/events?security_protocol=SASL_PLAINTEXT&sasl_mechanism=SCRAM-SHA-256"
        f"&sasl_username=svc&sasl_password_file={password_file}&connect_timeout=1",
    ]
    for url in urls:
        status, said = run(url, "serve", "--cluster", "none")

        assert status == 2, said
        assert said.splitlines()[-1].startswith("eventbatch: error:") and kafka_bootstrap in said.splitlines()[-1]
        assert SECRET not in said


@pytest.mark.parametrize(
    "url",
    [
        f"kafka://svc:{SECRET}@k1:9092/events?no_such_option=1",
        f"kafka://svc:{SECRET}@k1:9092/events",  # credentials without security_protocol=SASL_*
        f"kafka://svc:{SECRET}@k1/events?security_protocol=SASL_SSL",  # no port
        f"kafka://svc:{SECRET}@k1:9092/events?security_protocol=SASL_SSL&sasl_mechanism=GSSAPI",
        f"kafka://svc:p@ss:{SECRET}@k1:9092/events?partitions=2",  # an '@' not percent-encoded
        f"kafka://k1:9092/events?sasl_password={SECRET}",
        f"kafka://k1:9092/events?sasl_password={SECRET}&x",
    ],
    ids=["unknown-option", "no-protocol", "no-port", "mechanism", "raw-at", "password-option", "malformed"],
)
def test_a_refused_url_is_shown_with_the_password_masked(url: str) -> None:
    status, said = run(url, "schema", "events", level="INFO")

    assert status == 2, said
    assert said.count("\n") == 1 and said.startswith("eventbatch: error:"), said
    assert SECRET not in said and "***" in said


def test_log_lines_and_tracebacks_mask_the_password(capfd: pytest.CaptureFixture[str]) -> None:
    url = f"kafka://svc:{SECRET}@k1:9092/events?security_protocol=SASL_SSL"
    settings = Settings(log_url=url)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        for fmt in ("text", "json"):
            configure("DEBUG", fmt)
            logger = logging.getLogger("eventbatch.test")
            logger.info("serving", extra={"settings": settings.redacted(), "urls": [url], "raw": {"log": url}})
            logger.info("opened %s", url, extra={"log": url})
            try:
                raise RuntimeError(f"cannot use {url}")
            except RuntimeError:
                logger.debug("failed", exc_info=True)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)

    out, err = capfd.readouterr()
    assert "Traceback" in err and err.count("svc:***@k1:9092") >= 10
    assert SECRET not in out + err
