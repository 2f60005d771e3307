"""A Web Push service of our own for the tests, standing in for Google's, Mozilla's or Apple's:
it checks each message as a real one must (the VAPID signature, RFC 8292) and decrypts it as
the phone would (aes128gcm, RFC 8291, RFC 8188), written from the RFCs with the
``cryptography`` primitives — not with the library the hub sends with.

    service = PushService().start()
    phone = service.phone()                  # a subscriber: keys, endpoint, toJSON()
    ...                                      # subscribe it at the hub, press a button
    [msg] = service.wait_for(phone, 1)       # msg.payload is the JSON the phone gets
"""
from __future__ import annotations

import base64
import json
import os
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tests.helpers import wait_until


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hkdf(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(hashes.SHA256(), length, salt, info).derive(ikm)


class PushRefused(Exception):
    def __init__(self, status: int, why: str):
        super().__init__(why)
        self.status, self.why = status, why


@dataclass
class Phone:
    """A push subscriber: what a browser makes on pushManager.subscribe()."""

    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes
    #: Answer pushes with this status instead of 201 (410: "this subscription is gone").
    answer: int = 201

    @property
    def p256dh(self) -> bytes:
        return self.private_key.public_key().public_bytes(serialization.Encoding.X962,
                                                          serialization.PublicFormat.UncompressedPoint)

    def to_json(self) -> dict:
        """PushSubscription.toJSON()."""
        return {"endpoint": self.endpoint, "expirationTime": None,
                "keys": {"p256dh": b64url(self.p256dh), "auth": b64url(self.auth)}}

    def decrypt(self, body: bytes) -> bytes:
        """RFC 8291 / RFC 8188: the plaintext of one aes128gcm message to this phone."""
        salt, rs, idlen = body[:16], int.from_bytes(body[16:20], "big"), body[20]
        sender = body[21:21 + idlen]
        ciphertext = body[21 + idlen:]
        if idlen != 65 or sender[0] != 4:
            raise PushRefused(400, f"keyid must be the sender's uncompressed P-256 key (65 bytes), got {idlen}")
        if len(ciphertext) > rs:
            raise PushRefused(400, "more than one record: a push message is one record")
        shared = self.private_key.exchange(ec.ECDH(), ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), sender))
        ikm = _hkdf(self.auth, shared, b"WebPush: info\x00" + self.p256dh + sender, 32)
        cek = _hkdf(salt, ikm, b"Content-Encoding: aes128gcm\x00", 16)
        nonce = _hkdf(salt, ikm, b"Content-Encoding: nonce\x00", 12)
        padded = AESGCM(cek).decrypt(nonce, ciphertext, None)
        text = padded.rstrip(b"\x00")
        if not text.endswith(b"\x02"):
            raise PushRefused(400, "the last record must end with the delimiter 0x02")
        return text[:-1]


@dataclass
class Message:
    phone: str               # the endpoint
    headers: dict
    claims: dict             # the VAPID JWT's claims
    vapid_key: str           # the k= of the Authorization header (the hub's public key)
    payload: dict
    at: float = field(default_factory=time.time)


class PushService:
    """An HTTP push service on 127.0.0.1: checks and decrypts every message, and keeps them."""

    def __init__(self):
        self.phones: dict[str, Phone] = {}
        self.messages: list[Message] = []
        self.refused: list[tuple[int, str]] = []
        self._lock = threading.Lock()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    status = service._receive(self.path, dict(self.headers.items()), body)
                except PushRefused as e:
                    with service._lock:
                        service.refused.append((e.status, e.why))
                    status = e.status
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "PushService":
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def phone(self) -> Phone:
        p = Phone(f"{self.origin}/push/{b64url(os.urandom(12))}", ec.generate_private_key(ec.SECP256R1()),
                  os.urandom(16))
        self.phones[p.endpoint] = p
        return p

    def of(self, phone: Phone) -> list[Message]:
        with self._lock:
            return [m for m in self.messages if m.phone == phone.endpoint]

    def wait_for(self, phone: Phone, count: int, timeout: float = 10.0) -> list[Message]:
        return wait_until(lambda: self.of(phone) if len(self.of(phone)) >= count else None, timeout,
                          what=f"{count} push message(s)")

    # -- checking one message, as a push service does ---------------------------------------
    def _receive(self, path: str, headers: dict, body: bytes) -> int:
        headers = {k.lower(): v for k, v in headers.items()}
        phone = self.phones.get(self.origin + path)
        if phone is None:
            raise PushRefused(404, f"no subscription at {path}")
        claims, key = self._check_vapid(headers.get("authorization", ""))
        if headers.get("content-encoding") != "aes128gcm":
            raise PushRefused(400, f"Content-Encoding must be aes128gcm, got {headers.get('content-encoding')!r}")
        if "ttl" not in headers:
            raise PushRefused(400, "no TTL header")
        payload = json.loads(phone.decrypt(body))
        if phone.answer < 300:
            with self._lock:
                self.messages.append(Message(phone.endpoint, headers, claims, key, payload))
        return phone.answer

    def _check_vapid(self, authorization: str) -> tuple[dict, str]:
        """RFC 8292: ``vapid t=<JWT>, k=<public key>``; the JWT is ES256-signed with k's key, for
        this service's origin, expiring within 24 hours, with a contact."""
        scheme, _, rest = authorization.partition(" ")
        if scheme.lower() != "vapid":
            raise PushRefused(401, f"Authorization must be 'vapid t=..., k=...', got {authorization[:40]!r}")
        params = dict(p.strip().split("=", 1) for p in rest.split(","))
        token, key = params.get("t", ""), params.get("k", "")
        try:
            head64, claims64, sig64 = token.split(".")
            header, claims = json.loads(b64url_decode(head64)), json.loads(b64url_decode(claims64))
            public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(key))
        except ValueError as e:
            raise PushRefused(401, f"malformed VAPID token or key: {e}") from None
        if header.get("alg") != "ES256":
            raise PushRefused(401, f"VAPID alg must be ES256, got {header.get('alg')!r}")
        sig = b64url_decode(sig64)
        if len(sig) != 64:
            raise PushRefused(401, "an ES256 signature is 64 bytes (r || s)")
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        try:
            public.verify(der, f"{head64}.{claims64}".encode(), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise PushRefused(403, "the VAPID signature does not verify with k") from None
        if claims.get("aud") != self.origin:
            raise PushRefused(403, f"aud must be {self.origin}, got {claims.get('aud')!r}")
        if not time.time() < claims.get("exp", 0) <= time.time() + 24 * 3600:
            raise PushRefused(403, "exp must lie within the next 24 hours")
        if not str(claims.get("sub", "")).startswith(("mailto:", "https://")):
            raise PushRefused(403, f"sub must be a mailto: or https: contact, got {claims.get('sub')!r}")
        return claims, key
