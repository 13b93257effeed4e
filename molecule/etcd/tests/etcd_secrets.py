"""Find the scenario's secrets (passwords, private keys) in text such as Ansible's output."""

import base64
import os

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def secret_key_lines(path):
    """The base64 lines of a PEM private key that only the private key holds.

    A key's last lines may encode nothing but its public part (an EC key ends
    with its public point, aligned with the end of the public key's own PEM),
    and Ansible rightly shows public keys: lines found in the public key's
    encodings are left out.
    """
    with open(path, 'rb') as handle:
        pem = handle.read()
    public = []
    try:
        public_key = serialization.load_pem_private_key(pem, password=None).public_key()
    except (TypeError, ValueError):
        public_key = None  # encrypted: no line of it is public
    if public_key is not None:
        formats = [serialization.PublicFormat.SubjectPublicKeyInfo]
        if isinstance(public_key, rsa.RSAPublicKey):
            formats.append(serialization.PublicFormat.PKCS1)
        public = [base64.b64encode(public_key.public_bytes(serialization.Encoding.DER, f)).decode() for f in formats]
    lines = [line.strip() for line in pem.decode().splitlines() if line.strip() and '-----' not in line]
    return [line for line in lines if len(line) >= 16 and not any(line in p for p in public)]


def _lines_with(text, secret, label):
    """The lines of ``text`` holding ``secret``, the secret itself masked (they go into failure messages)."""
    return ['%s: %s' % (label, line.replace(secret, '<%s>' % label))
            for line in text.splitlines() if secret in line][:5]


def secrets_in(text, passwords, key_files):
    """Where ``text`` shows a password ({user: password}), a PEM private key header, or a line of a private key."""
    found = []
    for user, password in sorted(passwords.items()):
        found += _lines_with(text, password, 'password of %s' % user)
    found += _lines_with(text, 'PRIVATE KEY', 'PEM header')
    for path in key_files:
        lines = secret_key_lines(path)
        assert lines, 'found nothing secret to look for in %s' % path
        for line in lines:
            found += _lines_with(text, line, 'a line of %s' % os.path.basename(path))
    return found
