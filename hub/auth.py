"""Who is asking, and what they may do: roles, secrets, sessions and API tokens of the hub's web
side (docs/security.md, "Hub web"). HTTP-free: hub/api/deps.py reads the request and asks here.

- **Roles**, lowest first: ``device`` (reads health only), ``display`` (a floor screen: reads
  the calls, the associates and the stream, acts on nothing, no person's credit), ``associate``
  (the floor: calls, their own state, the stream), ``manager`` (plus statistics, exports, every
  associate), ``admin`` (everything). A role may do all a lower one may.
- **Sessions** (the pages): a random id in an ``HttpOnly; SameSite=Strict`` cookie, stored only
  as its SHA-256, expiring after :data:`SESSION_TTL_S`. A PIN signs in to the floor only
  (role ``associate``); a password signs in with the associate's configured role.
- **CSRF**: a cookie-authenticated request that changes something must carry
  :data:`CSRF_HEADER` with the session's CSRF token, derived from the session id, which only
  the page that signed in (or reads ``GET /api/v1/session`` with the cookie) can know.
- **Tokens** (API clients): ``Authorization: Bearer cbt_...``, made by ``callbell token
  create``, stored only as their SHA-256.

Session ids and tokens are 256 random bits, so one fast hash is enough to store them; a
password is a person's choice, so it is stored with scrypt (slow on purpose).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from callbell.clock import Clock
from hub.store import Credentials, Reader

#: Roles, lowest first. A role may do everything a lower one may.
ROLES = ("device", "display", "associate", "manager", "admin")
RANK = {role: i for i, role in enumerate(ROLES)}

#: How long a session lasts, seconds: a long shift, so nobody signs in twice a day, and a phone
#: left in a locker is signed out by the next morning.
SESSION_TTL_S = 12 * 3600

#: How long a floor screen's session lasts, seconds (``display`` role): a screen on the wall is
#: signed in once, by whoever installs it, not every shift. A year and a bit; revoking its
#: token (``callbell token revoke``) ends it at once.
DISPLAY_SESSION_TTL_S = 400 * 86400

#: The session cookie's name.
SESSION_COOKIE = "callbell_session"
#: The header a cookie-authenticated request that changes something must carry (CSRF).
CSRF_HEADER = "X-Callbell-CSRF"
#: Prefix of API tokens, so a leaked one is recognisable (secret scanners, logs).
TOKEN_PREFIX = "cbt_"
#: Random bytes in a session id or a token (256 bits: not guessable, no slow hash needed).
SECRET_BYTES = 32

#: scrypt cost for passwords: N=2^14, r=8, p=1 uses 16 MiB and took 85 ms per check on the
#: development machine (x86, 2 cores): guessing a stolen hash is slow, a sign-in still instant.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 14, 8, 1
SCRYPT_MAXMEM = 64 * 1024 * 1024
#: Passwords shorter than this are refused when a hash is made (characters).
MIN_PASSWORD_LENGTH = 10


@dataclass(frozen=True)
class Principal:
    """Who a request comes from. ``kind``: session, token or demo; ``associate``: the person
    behind a session (None for tokens); ``csrf``: the token a cookie request must send."""
    kind: str
    name: str
    role: str
    associate: str | None = None
    csrf: str | None = None
    expires_at: float | None = None

    def may(self, role: str) -> bool:
        return RANK[self.role] >= RANK[role]

    def as_dict(self) -> dict:
        return {"kind": self.kind, "name": self.name, "role": self.role, "associate": self.associate,
                "expires_at": self.expires_at}


#: Everyone, when the hub runs in demo mode (authentication off).
DEMO = Principal("demo", "demo", "admin")


def digest(secret: str) -> str:
    """How a session id or a token is stored: its SHA-256, hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


def csrf_token(session_id: str) -> str:
    """The CSRF token of a session: derived from its id (so nothing more is stored), and not
    derivable from what the database keeps (the id's plain SHA-256)."""
    return hashlib.sha256(b"callbell-csrf:" + session_id.encode()).hexdigest()[:32]


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(SECRET_BYTES)


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` (base64) for ``password_hash`` in store.toml."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=SCRYPT_MAXMEM)
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt)}${b64(key)}"


def check_password(password: str, stored: str) -> bool:
    """True if ``password`` matches a :func:`hash_password` result (constant-time compare)."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        want = base64.b64decode(key)
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             maxmem=SCRYPT_MAXMEM, dklen=len(want))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


def is_password_hash(value: str) -> bool:
    """Whether ``value`` has the shape :func:`hash_password` makes (for the config check)."""
    parts = value.split("$")
    if len(parts) != 6 or parts[0] != "scrypt" or not all(p.isdigit() for p in parts[1:4]):
        return False
    try:
        base64.b64decode(parts[4], validate=True), base64.b64decode(parts[5], validate=True)
    except ValueError:
        return False
    return True


class Authenticator:
    """Sessions and tokens of a running hub: looked up through the hub's :class:`Reader`,
    sessions written through :class:`Credentials` (short connections; see hub/store/__init__.py)."""

    def __init__(self, reader: Reader, credentials: Credentials, clock: Clock):
        self.reader, self.credentials, self.clock = reader, credentials, clock

    def start_session(self, associate: str, role: str, ttl_s: float = SESSION_TTL_S) -> tuple[str, Principal]:
        """A new session for ``associate`` (for a floor screen: its token's name) with
        ``role``, for ``ttl_s`` seconds: (session id for the cookie, principal)."""
        now = self.clock.time()
        session_id = secrets.token_urlsafe(SECRET_BYTES)
        self.credentials.add_session(digest(session_id), associate, role, now, now + ttl_s)
        return session_id, Principal("session", associate, role, associate, csrf_token(session_id), now + ttl_s)

    def end_session(self, session_id: str) -> None:
        self.credentials.end_session(digest(session_id))

    def session(self, session_id: str) -> Principal | None:
        """The live session with this id, or None (unknown, signed out or expired)."""
        row = self.reader.session(digest(session_id))
        if row is None or row["expires_at"] <= self.clock.time():
            return None
        if row["role"] == "display":  # a floor screen's session lasts as long as its token
            token = self.reader.token_named(row["associate"])
            if token is None or token["revoked_at"] is not None or token["role"] != "display":
                return None
        return Principal("session", row["associate"], row["role"], row["associate"], csrf_token(session_id),
                         row["expires_at"])

    def token(self, token: str) -> Principal | None:
        """The API client holding this token, or None (unknown or revoked)."""
        row = self.reader.token(digest(token))
        if row is None or row["revoked_at"] is not None:
            return None
        return Principal("token", row["name"], row["role"])
