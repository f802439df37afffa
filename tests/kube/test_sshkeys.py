"""The ssh plugin's key pair is what an MPI image's sshd and ssh client accept.

``id_rsa`` is a PKCS#1 PEM RSA key of the size the job asked for, the public
line is that key's own (a signature made with the private key verifies with
it; ``ssh-keygen -y`` derives the same line), and every Secret gets a fresh
key.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from eventbatch.kube.sshkeys import rsa_key_pair


@pytest.mark.parametrize("bits", [1024, 2048])
def test_the_public_line_belongs_to_the_private_key(bits: int) -> None:
    private, public = rsa_key_pair(bits, "demo-ssh")
    assert private.startswith("-----BEGIN RSA PRIVATE KEY-----\n")
    assert private.endswith("-----END RSA PRIVATE KEY-----\n")
    key = serialization.load_pem_private_key(private.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == bits
    assert public.endswith("\n") and public.count("\n") == 1
    kind, blob, comment = public.split()
    assert (kind, comment) == ("ssh-rsa", "demo-ssh")
    line_key = serialization.load_ssh_public_key(f"{kind} {blob}".encode())
    assert isinstance(line_key, rsa.RSAPublicKey)
    assert line_key.public_numbers() == key.public_key().public_numbers()
    signature = key.sign(b"login", padding.PKCS1v15(), hashes.SHA256())
    line_key.verify(signature, b"login", padding.PKCS1v15(), hashes.SHA256())


def test_without_a_comment_the_line_is_type_and_key() -> None:
    _, public = rsa_key_pair(1024)
    assert public.startswith("ssh-rsa AAAA") and len(public.split()) == 2


def test_every_pair_is_fresh() -> None:
    first, second = rsa_key_pair(1024), rsa_key_pair(1024)
    assert first[0] != second[0] and first[1] != second[1]


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs OpenSSH's ssh-keygen")
def test_openssh_reads_the_private_key_and_derives_the_same_public_line(tmp_path: Path) -> None:
    private, public = rsa_key_pair(2048, "demo-ssh")
    path = tmp_path / "id_rsa"
    path.write_text(private)
    path.chmod(0o600)
    derived = subprocess.run(["ssh-keygen", "-y", "-f", str(path)], capture_output=True, text=True, check=True).stdout
    assert derived.split()[:2] == public.split()[:2]
    (tmp_path / "id_rsa.pub").write_text(public)
    listed = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(tmp_path / "id_rsa.pub")], capture_output=True, text=True, check=True
    ).stdout
    assert listed.split()[0] == "2048" and listed.rstrip().endswith("demo-ssh (RSA)")
