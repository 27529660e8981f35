"""Verifies the DKIM signature of each message file with dkimpy, an independent implementation,
without DNS: the selector's TXT record is built here from the public key.

    dkimverify.py rsa PUBLIC_KEY_DER_BASE64 FILE...
    dkimverify.py ed25519 SEED_BASE64 FILE...      (the public key is derived with PyNaCl)

Prints one line per file: "pass FILE" or "fail FILE: reason"; exits 1 if any failed.
"""

import base64
import sys

import dkim
import nacl.signing


def main():
    algorithm, key, files = sys.argv[1], sys.argv[2], sys.argv[3:]
    if algorithm == "rsa":
        record = f"v=DKIM1; k=rsa; p={key}".encode()
    else:
        seed = base64.b64decode(key)
        public = bytes(nacl.signing.SigningKey(seed).verify_key)
        record = f"v=DKIM1; k=ed25519; p={base64.b64encode(public).decode()}".encode()

    def dnsfunc(name, timeout=5):
        return record

    failed = False
    for path in files:
        with open(path, "rb") as f:
            message = f.read()
        try:
            ok = dkim.verify(message, dnsfunc=dnsfunc)
            reason = "" if ok else "signature did not verify"
        except Exception as e:  # a malformed signature is a failure, with its reason
            ok, reason = False, str(e)
        print(f"pass {path}" if ok else f"fail {path}: {reason}")
        failed |= not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
