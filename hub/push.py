"""Web Push to the associates' phones: an alert reaches a locked phone, or one whose page is
closed, and keeps ringing there until someone acts.

A communicator beside ntfy and the webhook (hub.notify): the dispatcher hands it every batch
with :meth:`WebPush.send`, which only notes which alerts are waiting for whom; one worker
thread posts the pushes, so a slow or dead push service never holds up a press.

- **Keys.** VAPID (RFC 8292): the hub makes an EC P-256 key at its first start and keeps it
  beside its database (``vapid-private.pem``, mode 0600). Phones subscribe with its public key
  (``GET /api/v1/push/key``); a new key would orphan every subscription, so it is never rotated
  on its own.
- **Messages.** Encrypted for the phone (aes128gcm, RFC 8291, by pywebpush), ``TTL`` 60 s,
  ``Urgency: high``, ``Topic`` the call id (a push service keeps only the newest message of a
  topic for a phone that is offline). The JSON inside is :func:`alert_message`.
- **Ringing.** An alert is pushed when it is made, and again every ``[alerts] ring_repeat_s``
  while the call is open, its associate was alerted in the current round and has not said
  "Not me" (the same rule as the phone page: dashboard/ringer.js); at once again on a reminder
  press or when the call turns overdue.
- **Troubles** (faults of the system itself, hub.domain.troubles) ring the same way: pushed to
  each associate in the trouble's ``alerted`` list when they are alerted, and again every
  ``ring_repeat_s`` until someone acknowledges it or it clears (:class:`TroubleRings`,
  :func:`trouble_message`), with an "Acknowledge" action that the service worker posts with
  the subscription's token (``POST /api/v1/push/acknowledge``); ntfy's "Acknowledge" posts a
  :func:`trouble_token` there.
- **Receipts and taps.** Each subscription has a token, sent only inside the encrypted message:
  an HMAC of the subscription under a key derived from the VAPID key, so the database holds
  only its SHA-256 and the hub can make it again for every push. The service worker (dashboard/sw.js) posts it back with its delivery
  receipt (``POST /api/v1/push/receipt``) and with a tap on "On my way" or "Not me"
  (``POST /api/v1/push/act``): a locked phone has no page and so no session to act with.
  ntfy's buttons (hub.notify) post there too, with an alert token (:meth:`PushKeys.alert_token`)
  made with the same key: ntfy's app has no session either.
- **Push services.** Only endpoints at ``[alerts] push_services`` are accepted: without that,
  anyone signed in could make the hub post to any address on the store network.

    push = WebPush.from_config(config, PushSubscriptions(db), on_subscribed=...)
    dispatcher.communicators.append(push.start())
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from hub.dispatcher import Batch
from hub.plugins import HubParts, Plugin
from hub.store import PushSubscriptions
from hub.views import call_object, iso

log = logging.getLogger("callbell.hub.push")

#: Seconds a push service keeps a message for a phone that is offline. An alert a minute old is
#: worth little: by then the ladder has asked others, and the next repeat carries fresher news.
PUSH_TTL_S = 60

#: Seconds to wait for a push service to take a message (it answers 201 at once when well).
PUSH_TIMEOUT_S = 5.0

#: Failures in a row after which a subscription is dropped even though its push service did not
#: say it is gone (404/410 drop it at once): about an hour of repeats at 15 s to a dead endpoint.
MAX_FAILURES = 240

#: Push services whose endpoints phones may register, by origin: Chrome and Android (FCM),
#: Firefox (Mozilla autopush), Safari and iOS (Apple), Edge (Windows). ``[alerts]
#: push_services`` replaces the list.
DEFAULT_PUSH_SERVICES = (
    "https://fcm.googleapis.com",
    "https://updates.push.services.mozilla.com",
    "https://web.push.apple.com",
    "https://*.notify.windows.com",
)

KEY_FILE = "vapid-private.pem"

REASON_WORDS = {"help": "Help", "size": "Size"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class PushKeys:
    """The hub's VAPID key pair, made once and kept in ``path`` (PEM, readable by the hub only)."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey):
        self.private_key = private_key

    @classmethod
    def load_or_create(cls, path: Path) -> "PushKeys":
        path = Path(path)
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
                raise ValueError(f"{path}: not an EC P-256 private key (VAPID needs one); move it away to make a new one")
            return cls(key)
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        log.info("made the hub's Web Push (VAPID) key: %s", path)
        return cls(key)

    @property
    def public_key(self) -> str:
        """The applicationServerKey phones subscribe with: the uncompressed point, base64url."""
        raw = self.private_key.public_key().public_bytes(serialization.Encoding.X962,
                                                         serialization.PublicFormat.UncompressedPoint)
        return b64url(raw)

    def vapid(self):
        """The key as pywebpush signs with it."""
        from py_vapid import Vapid02
        return Vapid02(private_key=self.private_key)

    def _token(self, message: str) -> str:
        """HMAC-SHA256 of ``message`` under a key derived from the VAPID key, base64url."""
        secret = hashlib.sha256(b"callbell push token\0" + self.private_key.private_numbers().private_value.to_bytes(32, "big")).digest()
        return b64url(hmac.new(secret, message.encode(), hashlib.sha256).digest())

    def token_for(self, endpoint: str, associate: str, created_at: float) -> str:
        """The token of one subscription (see the module docstring): the same every time."""
        return self._token(f"{endpoint}\0{associate}\0{created_at!r}")

    def alert_token(self, call: str, pressed_at: float, associate: str) -> str:
        """The token of the buttons on an alert sent outside Web Push (ntfy, hub.notify): it lets
        ``associate`` say "On my way" or "Not me" to ``call``, nothing else. The press time
        (seconds) ties it to that call, not to a later one given the same id by a fresh
        database. Made the same way as a subscription's (those messages start with an
        endpoint URL, never ``alert``), and made again to check one, so nothing is stored."""
        return self._token(f"alert\0{call}\0{pressed_at!r}\0{associate}")

    def alert_token_matches(self, token: str, call: str, pressed_at: float, associate: str) -> bool:
        return hmac.compare_digest(token.encode(), self.alert_token(call, pressed_at, associate).encode())


def endpoint_allowed(endpoint: str, services: tuple[str, ...] | list[str]) -> bool:
    """Whether ``endpoint`` lies at one of ``services`` (origins; ``*.`` matches subdomains)."""
    try:
        u = urlsplit(endpoint)
    except ValueError:
        return False
    if u.scheme not in ("https", "http") or not u.hostname:
        return False
    origin_port = u.port or (443 if u.scheme == "https" else 80)
    for service in services:
        s = urlsplit(service)
        port = s.port or (443 if s.scheme == "https" else 80)
        if s.scheme != u.scheme or port != origin_port or not s.hostname:
            continue
        host = s.hostname
        if host.startswith("*."):
            if u.hostname.endswith(host[1:]):
                return True
        elif u.hostname == host:
            return True
    return False


# -- which alerts ring on whose phone, and when (no I/O; the clock is passed in) ----------------
@dataclass
class Ringing:
    """One alert being pushed to its associate until they act or the call is taken."""

    call: dict                 # the call object (hub.views.call_object)
    associate: str
    alerted_at: float          # the alert's time, seconds since the epoch
    next_at: float             # when to push it (again)
    pushes: int = 0
    urgent: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.call["id"], self.associate)


@dataclass
class RingSchedule:
    """Which alerts to push, and when again: the hub-side twin of dashboard/ringer.js."""

    repeat_s: float
    ringing: dict[tuple[str, str], Ringing] = field(default_factory=dict)

    def update(self, row: dict, call: dict, now: float) -> None:
        """A call changed: start, renew or stop pushing its alerts."""
        alerted = json.loads(row.get("alerted") or "[]")
        start = row["reopened_at"] if row.get("reopened_at") is not None else row["pressed_at"]
        declined = set(call.get("declined") or [])
        wanted: dict[str, float] = {}
        if call["status"] == "open":
            for a in alerted:
                if a["at"] >= start and a["associate"] not in declined:
                    wanted[a["associate"]] = max(wanted.get(a["associate"], 0.0), a["at"])
        for key in [k for k in self.ringing if k[0] == call["id"] and k[1] not in wanted]:
            del self.ringing[key]
        urgent = call["overdue"] or call["reminders"] > 0
        for who, at in wanted.items():
            r = self.ringing.get((call["id"], who))
            if r is None or r.alerted_at != at:
                self.ringing[(call["id"], who)] = Ringing(call, who, at, now, urgent=urgent)
                continue
            if call["reminders"] > r.call["reminders"] or (call["overdue"] and not r.call["overdue"]):
                r.next_at = now  # pressed again, or overdue: at once, urgent
            r.call, r.urgent = call, urgent

    def due(self, now: float) -> list[Ringing]:
        """The alerts to push now; each is then due again ``repeat_s`` later."""
        out = [r for r in self.ringing.values() if r.next_at <= now]
        for r in out:
            r.pushes += 1
            r.next_at = now + self.repeat_s
        return out

    def next_at(self) -> float | None:
        return min((r.next_at for r in self.ringing.values()), default=None)


def alert_message(r: Ringing, room: str, token: str, now: float, tz: ZoneInfo) -> dict:
    """The JSON a phone's service worker gets (dashboard/sw.js): what to show, and what to post
    back. ``receipt``: whether the hub still waits for this alert's delivery receipt."""
    call = r.call
    reason = REASON_WORDS.get(call["reason"], call["reason"])
    waited = max(0, round(now - call["pressed_ts"]))
    lines = [f"{'Over the standard: waiting' if call['overdue'] else 'A shopper is waiting'} "
             f"{waited // 60}:{waited % 60:02d}."]
    if call["reminders"]:
        lines.append(f"Pressed {call['reminders'] + 1} times.")
    mine = [a for a in call["alerted"] if a["associate"] == r.associate]
    alerted_at = iso(r.alerted_at, tz)
    receipted = any(a["at"] == alerted_at and a.get("delivered_at") for a in mine)
    return {"v": 1, "kind": "alert", "call": call["id"], "associate": r.associate, "alerted_at": alerted_at,
            "title": f"{'⚠ ' if r.urgent else ''}{room} — {reason}", "body": " ".join(lines),
            "urgent": r.urgent, "repeat": r.pushes, "receipt": not receipted, "token": token, "sent_at": now}


@dataclass
class TroubleRing:
    """One trouble being pushed to one associate it alerted, until it is acknowledged or clears."""

    trouble: dict              # the trouble object (docs/dashboard.md#troubles)
    associate: str
    alerted_at: str           # the alert's time as the trouble object gives it (ISO 8601)
    next_at: float            # when to push it (again), seconds since the epoch
    pushes: int = 0


@dataclass
class TroubleRings:
    """Which troubles to push to whom, and when again: while a trouble is open and nobody has
    acknowledged it, every associate it alerted is pushed at once and every ``repeat_s`` after."""

    repeat_s: float
    ringing: dict[tuple[str, str], TroubleRing] = field(default_factory=dict)

    def update(self, trouble: dict, now: float) -> None:
        """A trouble changed (opened, alerted someone, acknowledged, cleared)."""
        wanted: dict[str, str] = {}
        if trouble.get("cleared_at") is None and trouble.get("acknowledged_by") is None:
            for a in trouble.get("alerted") or []:
                wanted[a["associate"]] = a["at"]  # the latest alert of each associate
        for key in [k for k in self.ringing if k[0] == trouble["id"] and k[1] not in wanted]:
            del self.ringing[key]
        for who, at in wanted.items():
            r = self.ringing.get((trouble["id"], who))
            if r is None or r.alerted_at != at:  # a new alert: at once
                self.ringing[(trouble["id"], who)] = TroubleRing(trouble, who, at, now)
            else:
                r.trouble = trouble

    def due(self, now: float) -> list[TroubleRing]:
        """The troubles to push now; each is then due again ``repeat_s`` later."""
        out = [r for r in self.ringing.values() if r.next_at <= now]
        for r in out:
            r.pushes += 1
            r.next_at = now + self.repeat_s
        return out

    def next_at(self) -> float | None:
        return min((r.next_at for r in self.ringing.values()), default=None)


def trouble_token(keys: PushKeys, trouble: str, since: float, associate: str) -> str:
    """The token of an "Acknowledge" button sent outside Web Push (ntfy, hub.notify): it lets
    ``associate`` acknowledge ``trouble`` (opened at ``since``, seconds since the epoch: a later
    trouble with the same id after a database reset is not acted on), nothing else. Signed as a
    subscription's token is (:meth:`PushKeys.token_for`); its message starts with ``trouble``,
    never an endpoint's URL, so it stands for no subscription. Made again to check one: nothing
    is stored."""
    return keys.token_for(f"trouble\0{trouble}", associate, since)


def trouble_title(trouble: dict) -> str:
    """A trouble's headline: its kind in words (``device_silent`` → "Device silent")."""
    return trouble["kind"].replace("_", " ").capitalize()


def trouble_message(r: TroubleRing, token: str, now: float) -> dict:
    """The JSON a phone's service worker gets for a trouble (dashboard/sw.js): what to show, and
    the token to post "Acknowledge" back with."""
    t = r.trouble
    since = t["since"][11:16]  # HH:MM of the ISO time, in the store's zone
    body = f"{t.get('text') or trouble_title(t)}. Since {since}."
    if r.pushes > 1:
        body += " Still not acknowledged."
    return {"v": 1, "kind": "trouble", "trouble": t["id"], "associate": r.associate, "alerted_at": r.alerted_at,
            "title": f"⚠ Trouble — {trouble_title(t)}", "body": body, "repeat": r.pushes, "token": token,
            "sent_at": now}


class WebPush(Plugin):
    """The Web Push communicator. Start, send batches, stop."""

    def __init__(self, *, keys: PushKeys, subscriptions, contact: str, tz: ZoneInfo, rooms: dict[str, str],
                 repeat_s: float, services: tuple[str, ...] | list[str] = DEFAULT_PUSH_SERVICES,
                 clock: Callable[[], float] = time.time, post: Callable | None = None,
                 on_subscribed: Callable[[str, bool], None] = lambda associate, on: None):
        self.keys = keys
        self.subscriptions = subscriptions      # hub.store.PushSubscriptions
        self.contact = contact                  # VAPID "sub": mailto:... or https://...
        self.tz = tz
        self.rooms = rooms                      # room id → name
        self.services = tuple(services)
        self.clock = clock
        self.schedule = RingSchedule(repeat_s)
        self.troubles = TroubleRings(repeat_s)
        self._post = post or _webpush
        #: Told when an associate gains their first subscription or loses their last (the
        #: roster's push flag: hub.domain.associates "Reach").
        self.on_subscribed = on_subscribed
        self._subscribed = subscriptions.associates()
        self._lock = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._vapid = keys.vapid()
        self.sent = 0
        self.failed = 0

    @classmethod
    def from_config(cls, config, subscriptions, clock: Callable[[], float] = time.time,
                    on_subscribed: Callable[[str, bool], None] = lambda a, on: None) -> "WebPush | None":
        a = config.alerts
        if not a.web_push:
            return None
        keys = PushKeys.load_or_create(config.database.path.parent / KEY_FILE)
        contact = a.push_contact or (config.http.public_url if (config.http.public_url or "").startswith("https://")
                                     else "mailto:callbell@localhost")
        return cls(keys=keys, subscriptions=subscriptions, contact=contact, tz=config.tz,
                   rooms={r.id: r.name or r.id for r in config.rooms}, repeat_s=a.ring_repeat_s,
                   services=a.push_services if a.push_services is not None else DEFAULT_PUSH_SERVICES,
                   clock=clock, on_subscribed=on_subscribed)

    @classmethod
    def for_hub(cls, hub: HubParts) -> "WebPush | None":
        return cls.from_config(hub.config, PushSubscriptions(hub.config.database.path), hub.clock.time,
                               on_subscribed=hub.push_reachable)

    # -- subscriptions (HTTP threads) -------------------------------------------------------
    def subscribed(self, associate: str) -> None:
        """``associate`` added a subscription (hub.api.routes.push)."""
        with self._lock:
            first = associate not in self._subscribed
            self._subscribed.add(associate)
            self._lock.notify()
        if first:
            self.on_subscribed(associate, True)

    def unsubscribed(self, associate: str) -> None:
        """One of ``associate``'s subscriptions was removed."""
        if self.subscriptions.of(associate):
            return
        with self._lock:
            was = associate in self._subscribed
            self._subscribed.discard(associate)
        if was:
            self.on_subscribed(associate, False)

    # -- the dispatcher thread: note, return ------------------------------------------------
    def send(self, batch: Batch) -> None:
        if not batch.calls and not batch.troubles:
            return
        now = self.clock()
        with self._lock:
            for _, row in batch.calls.values():
                self.schedule.update(row, call_object(row, self.tz), now)
            for trouble in batch.troubles.values():
                self.troubles.update(trouble, now)
            self._lock.notify()

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> "WebPush":
        self._thread = threading.Thread(target=self._run, name="web-push", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        with self._lock:
            self._stopping = True
            self._lock.notify()
        if self._thread:
            self._thread.join(timeout_s)

    # -- the worker thread ------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._stopping:
                    now = self.clock()
                    due = [r for r in self.schedule.due(now) if r.associate in self._subscribed]
                    troubles = [r for r in self.troubles.due(now) if r.associate in self._subscribed]
                    if due or troubles:
                        break
                    nxt = min((t for t in (self.schedule.next_at(), self.troubles.next_at()) if t is not None),
                              default=None)
                    self._lock.wait(None if nxt is None else min(1.0, max(0.01, nxt - now)))
                if self._stopping:
                    return
            for r in due:
                try:
                    self._push(r)
                except Exception:  # one bad subscription must not end the worker
                    log.exception("push of %s to %s failed", r.call["id"], r.associate)
            for t in troubles:
                try:
                    self._push_to(t.associate, lambda token, now, t=t: trouble_message(t, token, now))
                except Exception:
                    log.exception("push of trouble %s to %s failed", t.trouble["id"], t.associate)

    def _push(self, r: Ringing) -> None:
        room = self.rooms.get(r.call["room"], r.call["room"])
        self._push_to(r.associate, lambda token, now: alert_message(r, room, token, now, self.tz))

    def _push_to(self, associate: str, message_for: Callable[[str, float], dict]) -> None:
        """Push ``message_for(token, now)`` to each of ``associate``'s subscriptions; drop the
        ones their push service says are gone, or that failed MAX_FAILURES times in a row."""
        now = self.clock()
        for sub in self.subscriptions.of(associate):
            token = self.keys.token_for(sub["endpoint"], sub["associate"], sub["created_at"])
            message = message_for(token, now)
            status = self._send_one(sub, message)
            if status in (404, 410):
                log.info("push subscription of %s is gone (%d): removed", associate, status)
                self.subscriptions.remove(sub["endpoint"])
                self.unsubscribed(associate)
            elif status is not None and 200 <= status < 300:
                self.sent += 1
                self.subscriptions.delivered(sub["endpoint"], True, now)
            else:
                self.failed += 1
                self.subscriptions.delivered(sub["endpoint"], False, now)
                if sub["failures"] + 1 >= MAX_FAILURES:
                    log.warning("push subscription of %s failed %d times in a row: removed", associate, MAX_FAILURES)
                    self.subscriptions.remove(sub["endpoint"])
                    self.unsubscribed(associate)

    def _send_one(self, sub: dict, message: dict) -> int | None:
        """Post one message; the push service's HTTP status, or None if it could not be reached."""
        info = {"endpoint": sub["endpoint"], "keys": {"p256dh": sub["p256dh"], "auth": sub["auth"]}}
        try:
            return self._post(info, json.dumps(message, separators=(",", ":")), self._vapid,
                              {"sub": self.contact}, message.get("call") or message["trouble"])
        except OSError as e:
            log.warning("push to %s: %s", urlsplit(sub["endpoint"]).hostname, e)
            return None


def _webpush(info: dict, data: str, vapid, claims: dict, topic: str) -> int:
    """Send with pywebpush; the push service's status code."""
    from pywebpush import WebPushException, webpush
    try:
        response = webpush(info, data=data, vapid_private_key=vapid, vapid_claims=dict(claims),
                           ttl=PUSH_TTL_S, timeout=PUSH_TIMEOUT_S,
                           headers={"Urgency": "high", "Topic": _topic(topic)})
    except WebPushException as e:
        if e.response is not None:
            return e.response.status_code
        raise OSError(str(e)) from None
    return response.status_code


def _topic(call_id: str) -> str:
    """A ``Topic`` header value: at most 32 characters of the URL-safe base64 alphabet."""
    return "".join(ch for ch in call_id if ch.isalnum() or ch in "-_")[:32]
