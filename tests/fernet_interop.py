#!/usr/bin/env python3
"""Decrypts an sfs vault blob with Python's `cryptography` Fernet, an
implementation independent of the Rust code, following FORMAT.md only.

usage: fernet_interop.py KEYFILE BLOB EXPECTED_PLAINTEXT
Exits 0 and prints "ok: ..." if the blob decrypts to EXPECTED_PLAINTEXT with
every inner header in place; exits 1 with the reason otherwise.
"""

import base64
import struct
import sys

from cryptography.fernet import Fernet, InvalidToken


def padded(n):
    return (n // 16 + 1) * 16


def decrypt_blob(key, blob):
    if len(blob) < 32 or blob[:8] != b"sfsvault":
        raise ValueError("bad magic")
    if blob[8] != 1 or blob[9:12] != b"\0\0\0":
        raise ValueError("bad version or reserved bytes")
    (chunk_size,) = struct.unpack(">I", blob[12:16])
    file_id = blob[16:32]
    token_len = 57 + padded(25 + chunk_size)
    body = blob[32:]
    count = max(1, -(-len(body) // token_len))
    fernet = Fernet(key)
    out = []
    for i in range(count):
        token = body[i * token_len:(i + 1) * token_len]
        # No ttl: cryptography then ignores the timestamp, as FORMAT.md requires.
        plain = fernet.decrypt(base64.urlsafe_b64encode(token))
        final = i == count - 1
        if plain[:16] != file_id:
            raise ValueError(f"chunk {i}: wrong file id")
        (index,) = struct.unpack(">Q", plain[16:24])
        if index != i:
            raise ValueError(f"chunk {i}: carries index {index}")
        if plain[24] != (1 if final else 0):
            raise ValueError(f"chunk {i}: flags {plain[24]:#x}")
        data = plain[25:]
        if not final and len(data) != chunk_size:
            raise ValueError(f"chunk {i}: holds {len(data)} bytes")
        out.append(data)
    return b"".join(out), count


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    key_path, blob_path, expected_path = sys.argv[1:]
    with open(key_path, "rb") as f:
        key = f.read().strip()
    with open(blob_path, "rb") as f:
        blob = f.read()
    with open(expected_path, "rb") as f:
        expected = f.read()
    try:
        plain, count = decrypt_blob(key, blob)
    except (ValueError, InvalidToken) as e:
        print(f"FAIL: {type(e).__name__}: {e}")
        return 1
    if plain != expected:
        print(f"FAIL: plaintext differs ({len(plain)} bytes, expected {len(expected)})")
        return 1
    print(f"ok: {count} chunks, {len(plain)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
