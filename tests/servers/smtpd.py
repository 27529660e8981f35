"""A real SMTP server for the tests: aiosmtpd on 127.0.0.1, storing every message exactly as
received (after dot-unstuffing) in a Maildir, with an envelope log beside it.

    smtpd.py --port N --maildir DIR [--mode plain|starttls|tls] [--cert F --key F]
             [--auth USER:PASS] [--auth-ok N] [--rcpt-reply ADDRESS=REPLY ...]
             [--idle-timeout SECONDS]

--auth requires AUTH (PLAIN/LOGIN) before MAIL; --auth-ok N accepts only the first N AUTH
attempts with the right password and rejects the rest (credentials revoked mid-run).
--rcpt-reply answers RCPT TO:<ADDRESS> with REPLY (`*`: every address), e.g.
`*=554 5.7.1 Relay access denied`. --idle-timeout closes a session idle that long with Postfix's
`421 4.4.2 … Error: timeout exceeded`.
Prints "ready" on stdout once it accepts connections; runs until killed.
"""

import argparse
import asyncio
import json
import os
import ssl
import sys
import threading
import time
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Store:
    def __init__(self, maildir, rcpt_replies):
        self.maildir = maildir
        self.rcpt_replies = rcpt_replies
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(maildir, sub), exist_ok=True)
        self.lock = threading.Lock()
        self.n = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.rcpt_replies.get(address.lower(), self.rcpt_replies.get("*"))
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.n += 1
            name = f"{time.time_ns()}.{self.n}.outreach-test"
        tmp = os.path.join(self.maildir, "tmp", name)
        with open(tmp, "wb") as f:
            f.write(envelope.original_content)
        os.rename(tmp, os.path.join(self.maildir, "new", name))
        record = {
            "file": name,
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "mail_options": envelope.mail_options,
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "auth": session.authenticated,
        }
        with self.lock, open(os.path.join(self.maildir, "envelopes.jsonl"), "a") as f:
            f.write(json.dumps(record) + "\n")
        return f"250 2.0.0 Ok: queued as {name}"


class Authenticator:
    def __init__(self, user, password, ok):
        self.user, self.password, self.ok = user, password, ok
        self.lock = threading.Lock()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        good = auth_data.login.decode() == self.user and auth_data.password.decode() == self.password
        with self.lock:
            if good and self.ok is not None:
                good = self.ok > 0
                self.ok -= 1
        # handled=False: aiosmtpd answers 535 itself.
        return AuthResult(success=good, handled=False)


class ClosingSMTP(SMTP):
    """Says 421 before closing an idle session, as Postfix's smtpd does."""

    def _timeout_cb(self):
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"421 4.4.2 localhost Error: timeout exceeded\r\n")
        super()._timeout_cb()


def main():
    # Plain-text AUTH on loopback is deliberate in the tests of its failure paths.
    warnings.simplefilter("ignore")
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--maildir", required=True)
    p.add_argument("--mode", choices=["plain", "starttls", "tls"], default="plain")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--auth")
    p.add_argument("--auth-ok", type=int)
    p.add_argument("--rcpt-reply", action="append", default=[])
    p.add_argument("--idle-timeout", type=float)
    a = p.parse_args()

    context = None
    if a.mode != "plain":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(a.cert, a.key)
    kwargs = {}
    if a.auth:
        user, password = a.auth.split(":", 1)
        kwargs.update(
            authenticator=Authenticator(user, password, a.auth_ok),
            auth_required=True,
            # Plain-text AUTH is allowed on loopback for the tests that check its failure paths.
            # STARTTLS must come before AUTH; implicit TLS is encrypted from the start.
            auth_require_tls=a.mode == "starttls",
        )
    rcpt_replies = dict(r.split("=", 1) for r in a.rcpt_reply)
    handler = Store(a.maildir, {k.lower(): v for k, v in rcpt_replies.items()})

    if a.idle_timeout:
        kwargs["timeout"] = a.idle_timeout

    def factory():
        return ClosingSMTP(
            handler,
            hostname="localhost",
            tls_context=context if a.mode == "starttls" else None,
            require_starttls=a.mode == "starttls",
            enable_SMTPUTF8=True,
            **kwargs,
        )

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(
        loop.create_server(
            factory, host="127.0.0.1", port=a.port, ssl=context if a.mode == "tls" else None
        )
    )
    print("ready", flush=True)
    try:
        loop.run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


if __name__ == "__main__":
    sys.exit(main())
