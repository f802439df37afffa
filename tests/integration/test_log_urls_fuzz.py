"""Every ``--log`` URL, whatever its options hold: ``open_log`` returns a log or raises
``LogUrlError`` (a ``ValueError``) with one line, never another exception; the command line
prints that one line and exits 2. Also the named values the finding listed, and the TLS and
SASL options reaching aiokafka's clients."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from aiokafka.client import AIOKafkaClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventbatch.cli import main
from eventbatch.log.factory import _KAFKA_OPTIONS, _SQLITE_OPTIONS, LogUrlError, open_log
from eventbatch.log.kafka import KafkaLog

ROOT = Path(__file__).resolve().parents[2]
BASES = {"memory": "memory://", "sqlite": "sqlite:///tmp/eventbatch-fuzz/e.db", "kafka": "kafka://k1:9092/events"}
OPTIONS = {"memory": ["chunk"], "sqlite": sorted(_SQLITE_OPTIONS), "kafka": sorted(_KAFKA_OPTIONS)}
VALUES = st.one_of(
    st.sampled_from(["", "0", "1", "-1", "-5", "1.5", "nan", "inf", "-inf", "1e400", "off", "full", "normal",
                     "9" * 5000, "0x10", "1_000", "١٢", " 1", "SASL_SSL", "plain", "gzip", "/etc/passwd",
                     "/nonexistent", "%00", "a&b=c", "=", "?"]),
    st.text(max_size=20),
    st.integers(-10**20, 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
)


def _url(backend: str, pairs: list[tuple[str, str]], netloc: str) -> str:
    base = BASES[backend] if backend != "kafka" or not netloc else f"kafka://{netloc}/events"
    if not pairs:
        return base
    return base + "?" + "&".join(f"{name}={quote(value, safe='')}" for name, value in pairs)


@st.composite
def urls(draw: st.DrawFn) -> str:
    backend = draw(st.sampled_from(sorted(BASES)))
    names = st.one_of(st.sampled_from(OPTIONS[backend]), st.text(max_size=8))
    pairs = draw(st.lists(st.tuples(names, VALUES), max_size=3))
    netloc = draw(st.one_of(st.just(""), st.text(max_size=25), st.sampled_from(
        ["u:p@k1:9092", "[::1]:9092", "k1:0", "k1:65536", "k1:", ":9092", "u@k1:1", "[::1:9092", "k1:9092,,k2:1"])))
    return _url(backend, pairs, netloc)


def _one_line_refusal_or_log(url: str) -> None:
    try:
        opened = open_log(url)
    except LogUrlError as exc:
        assert isinstance(exc, ValueError)
        text = str(exc)
        assert text and "\n" not in text and "\r" not in text or repr(url) != url, text
    else:
        assert opened.url


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(urls())
def test_open_log_returns_a_log_or_refuses_with_one_line(url: str) -> None:
    _one_line_refusal_or_log(url)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(option=st.sampled_from(sorted(BASES)).flatmap(
    lambda backend: st.tuples(st.just(backend), st.sampled_from(OPTIONS[backend]), VALUES)))
def test_the_command_line_refuses_a_bad_option_with_one_line_and_exit_2(
    option: tuple[str, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    backend, name, value = option
    url = _url(backend, [(name, value)], "")
    try:
        open_log(url)
    except LogUrlError:
        refused = True
    else:
        refused = False
    status = main(["--log", url, "schema", "events"]) if refused else None
    out, err = capsys.readouterr()
    if refused:
        assert status == 2
        assert err.count("\n") == 1 and err.startswith("eventbatch: error: "), err


@pytest.mark.slow
@pytest.mark.parametrize(
    "url, reason",
    [
        ("sqlite:///tmp/e.db?chunk=-5", "'chunk'.*>= 1"),
        ("sqlite:///tmp/e.db?poll_interval=-1", "'poll_interval'.*> 0"),
        ("sqlite:///tmp/e.db?synchronous=off", "synchronous"),
        ("memory://?chunk=-5", "'chunk'"),
        ("kafka://k1:9092/events?poll_ms=-1", "'poll_ms'"),
        ("kafka://k1:9092/events?security_protocol=TLS", "'security_protocol'.*must be one of"),
        ("kafka://u:p@k1:9092/events?security_protocol=SSL", "needs security_protocol=SASL_SSL or SASL_PLAINTEXT"),
        ("kafka://k1:9092/events?security_protocol=SASL_SSL", "needs a user and a password"),
        ("kafka://k1:9092/events?ssl_cafile=/nonexistent/ca.pem&security_protocol=SSL", "ssl_cafile: cannot read"),
        ("kafka://k1:9092/events?ssl_cafile=/etc/hostname&security_protocol=PLAINTEXT", "needs security_protocol=SSL"),
        ("kafka://k1:9092/events?ssl_keyfile=/etc/hostname&security_protocol=SSL", "ssl_keyfile needs ssl_certfile"),
        ("kafka://u:p@k1:9092/events?security_protocol=SASL_SSL&sasl_password_file=/etc/hostname", "given twice"),
    ],
)
def test_the_values_the_finding_named_are_refused_in_one_line(url: str, reason: str) -> None:
    with pytest.raises(LogUrlError, match=reason) as refused:
        open_log(url)
    assert "\n" not in str(refused.value)

    done = subprocess.run([sys.executable, "-m", "eventbatch", "--log", url, "schema", "events"], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and done.stdout == "", done.stderr


def _throwaway_tls(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A CA, and a client certificate and key it signed, as PEM files."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def signed(subject: str, key, issuer: str, issuer_key, *, ca: bool) -> x509.Certificate:
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(subject)).issuer_name(name(issuer)).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key, client_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_cert = signed("test ca", ca_key, "test ca", ca_key, ca=True)
    client_cert = signed("client", client_key, "test ca", ca_key, ca=False)
    ca, cert, key = tmp_path / "ca.pem", tmp_path / "client.pem", tmp_path / "client.key"
    ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert.write_bytes(client_cert.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(client_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))
    return ca, cert, key


async def test_tls_and_sasl_options_reach_every_aiokafka_client(tmp_path: Path) -> None:
    ca, cert, key = _throwaway_tls(tmp_path)
    password = tmp_path / "password"
    password.write_text("pw-from-file\n")
    url = (f"kafka://k1:9093/events?security_protocol=SASL_SSL&sasl_mechanism=SCRAM-SHA-512&sasl_username=svc"
           f"&sasl_password_file={password}&ssl_cafile={ca}&ssl_certfile={cert}&ssl_keyfile={key}")

    log = open_log(url)

    assert isinstance(log, KafkaLog) and log.url == "kafka://k1:9093/events"
    config = log.client_config()
    client = AIOKafkaClient(**config)
    assert client._security_protocol == "SASL_SSL" and client._sasl_mechanism == "SCRAM-SHA-512"
    assert (client._sasl_plain_username, client._sasl_plain_password) == ("svc", "pw-from-file")
    context: ssl.SSLContext = client._ssl_context
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "test ca"),),)]

    in_url = open_log("kafka://svc:p%40ss@k1:9093/events?security_protocol=SASL_PLAINTEXT").client_config()
    assert (in_url["sasl_mechanism"], in_url["sasl_plain_username"], in_url["sasl_plain_password"]) == ("PLAIN", "svc", "p@ss")
    assert "ssl_context" not in in_url and in_url["bootstrap_servers"] == "k1:9093"

    key.write_text("not a key")
    with pytest.raises(LogUrlError, match="cannot use the TLS files"):
        open_log(url)
