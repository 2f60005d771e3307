"""Alerts beyond the open page: ntfy push to each associate's phone, and a generic webhook.

A communicator like the MQTT and SSE channels: the dispatcher hands it every batch with
:meth:`Notifier.send`, which only looks at the batch and queues what is to be sent — it never
touches the network, so a slow or dead ntfy server cannot hold up a press. One worker thread
posts from a bounded queue, retries with backoff and logs failures; nothing here raises into
the dispatcher.

    notifier = Notifier.from_config(config)      # None when nothing is configured
    dispatcher.communicators.append(notifier)
    notifier.start()

ntfy: one JSON message per new alert, ``POST`` to the server root (docs.ntfy.sh/publish,
"Publish as JSON")::

    {"topic": "callbell-ana-7Qx", "title": "Fitting room 3 — size", "message": "...",
     "priority": 4, "tags": ["bell"], "click": "https://hub/phone",
     "actions": [{"action": "http", "label": "On my way", "url": "https://hub/api/v1/push/act",
                  "method": "POST", "headers": {"Content-Type": "application/json"},
                  "body": "{\\"token\\":\\"…\\",\\"call\\":\\"c-000042\\",\\"associate\\":\\"ana\\",\\"action\\":\\"acknowledge\\"}",
                  "clear": true}, ...]}

The buttons post from ntfy's app, which has no session with the hub: each carries an alert token
signed with the hub's Web Push key (:meth:`hub.push.PushKeys.alert_token`) for that call and
associate, checked by ``POST /api/v1/push/act`` like a Web Push tap's token. They need ``[http]
public_url``, an address the phones reach; without it the alert goes out without buttons and
the hub says so once at start (:func:`action_problem`).

Webhook: ``POST`` JSON ``{"kind": "alert", "associate": {...}, "call": {...}}`` for each new
alert and ``{"kind": "call", "call": {...}}`` for every other call change; ``call`` is the call
object exactly as published on ``call/{call}`` (docs/spec/PROTOCOL.md). Headers: ``X-Callbell-Event``
(the kind), ``X-Callbell-Delivery`` (one id per delivery, the same on its retries: a receiver
that saw it already answers 2xx and does nothing), and with ``[notify] webhook_secret``::

    X-Callbell-Timestamp: 1763800000
    X-Callbell-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + raw body)>

The timestamp is signed with the body, so a captured request cannot be replayed later with a
fresh one; a receiver refuses a timestamp more than a few minutes old (docs/integrations.md).

Troubles (faults of the system itself, hub.domain.troubles) go out like alerts: an ntfy message
at the top priority to each associate the trouble alerts, each time it alerts them, with an
"Acknowledge" button that posts a token for that trouble and associate
(:func:`hub.push.trouble_token`) to ``POST /api/v1/push/acknowledge``; and a webhook
``{"kind": "trouble", "trouble": {...}}`` for every change of it (opened, alerted, acknowledged,
cleared), ``trouble`` the trouble object of ``GET /api/v1/troubles``.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import queue
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from hub.dispatcher import Batch
from hub.plugins import HubParts, Plugin
from hub.push import KEY_FILE, PushKeys, trouble_title, trouble_token
from hub.views import call_object

log = logging.getLogger("callbell.hub.notify")

#: Deliveries waiting for the worker. A burst bigger than this (a hub catching up after a long
#: outage, a dead server) drops the newest with a warning rather than growing without bound;
#: the page and the dashboard still show every alert.
QUEUE_SIZE = 500

#: Attempts per delivery, and the pause before the second one (doubling after that): 3 tries
#: over about 1.5 s ride out a server restart without sending an alert that is minutes stale.
ATTEMPTS = 3
BACKOFF_S = 0.5

#: Seconds to wait for the server's answer. Short: the worker posts one message at a time.
TIMEOUT_S = 5.0

#: An alert older than this when the notifier first sees it is not pushed. After a hub restart
#: the first change of each open call carries its whole ``alerted`` history; those were pushed
#: before the restart (at most the last few seconds' worth go out twice).
FRESH_S = 30.0

#: ntfy priorities (1 min … 5 max): the first alert, and a later step, a reminder press or a
#: call past the standard (long vibration, pop-over).
PRIORITY_FIRST = 4
PRIORITY_URGENT = 5
#: A trouble: the top priority from the first message (a fault can leave rooms that cannot call).
PRIORITY_TROUBLE = 5

#: Call ids whose latest status is remembered, to skip alerts already taken by someone.
STATUS_MEMORY = 2000

REASON_WORDS = {"help": "help", "size": "another size"}

SIGNATURE_HEADER = "X-Callbell-Signature"
TIMESTAMP_HEADER = "X-Callbell-Timestamp"


#: Hosts a phone cannot reach the hub at: its own loopback.
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}


def action_problem(public_url: str | None, people: dict[str, dict]) -> str | None:
    """Why ntfy alerts cannot be acted on from the phone, or None when they can (or no one
    has an ntfy topic): the buttons post to ``public_url``, which the phones must reach."""
    if not any(p.get("ntfy_topic") and p.get("ntfy_url") for p in people.values()):
        return None
    if not public_url:
        return ("ntfy alerts go out without their 'On my way' / 'Not me' buttons: [http] public_url is not set "
                "(the address phones reach the hub at)")
    host = (urlsplit(public_url).hostname or "").lower()
    if host in LOOPBACK_HOSTS or host.startswith("127."):
        return (f"ntfy's 'On my way' / 'Not me' buttons post to [http] public_url = {public_url}, this machine's own "
                "address: a phone cannot reach it (give the address phones use)")
    return None


def webhook_signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Callbell-Signature`` value: ``sha256=`` and the hex HMAC-SHA256, keyed with the
    secret, of the timestamp (seconds since the epoch, as sent), a dot, and the raw body."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


@dataclass(frozen=True)
class Delivery:
    url: str
    body: dict
    headers: dict
    call: str | None = None       # skip if this call is no longer waiting when its turn comes
    what: str = ""
    signed: bool = False          # a webhook delivery: signed with the webhook secret, if any
    id: str = field(default_factory=lambda: uuid.uuid4().hex)  # the same on every retry


class Notifier(Plugin):
    """The push communicator: ntfy per associate, and a webhook. Start, send batches, stop."""

    def __init__(self, *, tz: ZoneInfo, rooms: dict[str, str], people: dict[str, dict],
                 ntfy_token: str | None = None, webhook_url: str | None = None, webhook_secret: str | None = None,
                 public_url: str | None = None, keys: PushKeys | None = None, standard_s: float = 90.0,
                 clock=time.time, attempts: int = ATTEMPTS, backoff_s: float = BACKOFF_S):
        """``keys`` sign the buttons of ntfy alerts (hub.push.PushKeys.alert_token); without
        them, or without ``public_url``, alerts go out without buttons."""
        self.tz = tz
        self.rooms = rooms                 # room id → name
        self.people = people               # associate id → {"name", "ntfy_url", "ntfy_topic"}
        self.ntfy_token = ntfy_token
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.public_url = public_url.rstrip("/") if public_url else None
        self.keys = keys
        self.standard_s = standard_s
        self.clock = clock
        self.attempts, self.backoff_s = attempts, backoff_s
        self._queue: queue.Queue[Delivery | None] = queue.Queue(QUEUE_SIZE)
        self._sent: set[tuple] = set()     # (call, associate, step, at) already pushed
        self._status: dict[str, str] = {}  # call → latest status
        #: trouble id → its alerts already pushed, (associate, at): those the trouble object still lists
        self._troubles_sent: dict[str, set[tuple[str, str]]] = {}
        self._thread: threading.Thread | None = None
        self.delivered = 0
        self.failed = 0
        self.dropped = 0

    @classmethod
    def from_config(cls, config, clock=time.time) -> "Notifier | None":
        """A notifier for the store, or None when neither ntfy topics nor a webhook are set."""
        n = config.notify
        people = {a.id: {"name": a.name or a.id, "ntfy_topic": a.ntfy_topic,
                         "ntfy_url": (a.ntfy_url or n.ntfy_url or "").rstrip("/") or None}
                  for a in config.associates}
        if not n.webhook_url and not any(p["ntfy_topic"] for p in people.values()):
            return None
        public_url = config.http.public_url
        # The Web Push key (made at the first start, kept beside the database) signs the buttons.
        keys = (PushKeys.load_or_create(config.database.path.parent / KEY_FILE)
                if public_url and any(p["ntfy_topic"] for p in people.values()) else None)
        return cls(tz=config.tz, rooms={r.id: r.name or r.id for r in config.rooms}, people=people,
                   ntfy_token=n.ntfy_token or os.environ.get("CALLBELL_NTFY_TOKEN"),
                   webhook_url=n.webhook_url, public_url=public_url, keys=keys,
                   webhook_secret=n.webhook_secret or os.environ.get("CALLBELL_WEBHOOK_SECRET"),
                   standard_s=config.store.standard_s, clock=clock)

    @classmethod
    def for_hub(cls, hub: HubParts) -> "Notifier | None":
        return cls.from_config(hub.config, hub.clock.time)

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> "Notifier":
        problem = action_problem(self.public_url, self.people)
        if problem:
            log.warning(problem)
        self._thread = threading.Thread(target=self._run, name="notifier", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop after the delivery in hand; what still waits is dropped (and logged): a hub
        that is stopping must not hang on a slow server."""
        left = 0
        while True:
            try:
                if self._queue.get_nowait() is not None:
                    left += 1
                self._queue.task_done()
            except queue.Empty:
                break
        if left:
            log.warning("stopping: %d notification(s) not sent", left)
        self._queue.put(None)
        if self._thread:
            self._thread.join(timeout_s)

    def idle(self) -> bool:
        """Nothing waiting (for tests and a clean stop)."""
        return self._queue.unfinished_tasks == 0

    # -- the dispatcher thread: look, queue, return -----------------------------------------
    def send(self, batch: Batch) -> None:
        now = self.clock()
        self._send_troubles(batch, now)
        for _, row in sorted(batch.calls.values(), key=lambda c: c[0]):
            call = call_object(row, self.tz)
            self._remember(call)
            fresh = []
            for a in json.loads(row.get("alerted") or "[]"):
                key = (row["id"], a["associate"], a["step"], a["at"])
                if key in self._sent:
                    continue
                self._sent.add(key)
                if call["status"] == "open" and now - a["at"] <= FRESH_S:
                    fresh.append(a)
            for a in fresh:
                self._alert(call, a["associate"], a["step"])
            if self.webhook_url and not fresh:
                self._put(Delivery(self.webhook_url, {"kind": "call", "call": call}, {"X-Callbell-Event": "call"},
                                   what=f"webhook {call['id']}", signed=True))
        if len(self._sent) > 20 * STATUS_MEMORY:  # forget closed calls' alerts
            self._sent = {k for k in self._sent if self._status.get(k[0]) in ("open", "acknowledged", "answered")}

    def _remember(self, call: dict) -> None:
        self._status[call["id"]] = call["status"]
        if len(self._status) > STATUS_MEMORY:
            for old in list(self._status)[: len(self._status) - STATUS_MEMORY]:
                del self._status[old]

    def _alert(self, call: dict, associate: str, step: int) -> None:
        person = self.people.get(associate, {})
        if self.webhook_url:
            self._put(Delivery(self.webhook_url, {
                "kind": "alert", "associate": {"id": associate, "name": person.get("name", associate)},
                "step": step, "call": call}, {"X-Callbell-Event": "alert"},
                what=f"webhook alert {call['id']} → {associate}", signed=True))
        if person.get("ntfy_topic") and person.get("ntfy_url"):
            headers = {"Authorization": f"Bearer {self.ntfy_token}"} if self.ntfy_token else {}
            self._put(Delivery(person["ntfy_url"] + "/", self.ntfy_message(call, associate, step), headers,
                               call=call["id"], what=f"ntfy {call['id']} → {associate}"))

    def ntfy_message(self, call: dict, associate: str, step: int) -> dict:
        """The ntfy JSON message for one alert (docs.ntfy.sh/publish: "Publish as JSON")."""
        room = self.rooms.get(call["room"], call["room"])
        reason = REASON_WORDS.get(call["reason"], call["reason"])
        waited = max(0, round(self.clock() - call["pressed_ts"]))
        urgent = step > 0 or call["reminders"] > 0 or call["overdue"]
        lines = [f"Waiting {waited // 60}:{waited % 60:02d} (standard {self.standard_s:g} s)."]
        if call["reminders"]:
            lines.append(f"Pressed {call['reminders'] + 1} times.")
        others = [a["associate"] for a in call["alerted"] if a["associate"] != associate]
        if others:
            lines.append("Also asked: " + ", ".join(self.people.get(o, {}).get("name", o) for o in dict.fromkeys(others)))
        msg = {"topic": self.people[associate]["ntfy_topic"],
               "title": f"{room} — {reason}",
               "message": " ".join(lines),
               "priority": PRIORITY_URGENT if urgent else PRIORITY_FIRST,
               "tags": ["rotating_light" if urgent else "bell", call["reason"]]}
        if self.public_url:
            msg["click"] = f"{self.public_url}/phone"
        if self.public_url and self.keys:
            token = self.keys.alert_token(call["id"], call["pressed_ts"], associate)
            msg["actions"] = [
                {"action": "http", "label": label, "url": f"{self.public_url}/api/v1/push/act",
                 "method": "POST", "headers": {"Content-Type": "application/json"},
                 "body": json.dumps({"token": token, "call": call["id"], "associate": associate, "action": verb},
                                    separators=(",", ":")),
                 "clear": True}
                for label, verb in (("On my way", "acknowledge"), ("Not me", "decline"))]
        return msg

    def _put(self, d: Delivery) -> None:
        try:
            self._queue.put_nowait(d)
        except queue.Full:
            self.dropped += 1
            log.warning("notification queue full (%d): dropped %s", QUEUE_SIZE, d.what)

    # -- the worker thread ------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            d = self._queue.get()
            try:
                if d is None:
                    return
                self._deliver(d)
            except Exception:  # never let one bad message end the worker
                log.exception("notification %s failed", d.what if d else "")
            finally:
                self._queue.task_done()

    def _deliver(self, d: Delivery) -> None:
        pause = self.backoff_s
        for attempt in range(1, self.attempts + 1):
            if d.call is not None and self._status.get(d.call, "open") != "open":
                log.debug("%s skipped: the call is %s", d.what, self._status[d.call])
                return
            try:
                self._post(d)
                self.delivered += 1
                return
            except urllib.error.HTTPError as e:
                retry = e.code >= 500 or e.code == 429
                log.warning("%s: HTTP %d from %s (attempt %d of %d)", d.what, e.code, d.url, attempt, self.attempts)
                if not retry:
                    break
            except (OSError, ValueError) as e:
                log.warning("%s: %s (attempt %d of %d)", d.what, e, attempt, self.attempts)
            if attempt < self.attempts:
                time.sleep(pause)
                pause *= 2
        self.failed += 1
        log.error("%s not delivered to %s", d.what, d.url)

    def _post(self, d: Delivery) -> None:
        data = json.dumps(d.body, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "callbell-hub", **d.headers}
        if d.signed:
            headers["X-Callbell-Delivery"] = d.id
            if self.webhook_secret:
                # Signed at each attempt, with the time of that attempt: a retry is not stale.
                timestamp = int(time.time())
                headers[TIMESTAMP_HEADER] = str(timestamp)
                headers[SIGNATURE_HEADER] = webhook_signature(self.webhook_secret, timestamp, data)
        req = urllib.request.Request(d.url, data=data, method="POST", headers=headers)
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as r:
            r.read()

    # -- troubles (the dispatcher thread) ---------------------------------------------------
    def _send_troubles(self, batch: Batch, now: float) -> None:
        """Queue an ntfy message for each new alert of a trouble, and a webhook for each change.

        A trouble seen for the first time (it opened, or this hub was restarted since) is pushed
        for its latest alert of each associate only: earlier ones went out before a restart."""
        for trouble in batch.troubles.values():
            tid = trouble["id"]
            waiting = trouble.get("cleared_at") is None and trouble.get("acknowledged_by") is None
            alerted = trouble.get("alerted") or []  # the latest ones, in the order made
            sent = self._troubles_sent.get(tid)
            latest = {a["associate"]: a["at"] for a in alerted}
            for a in alerted:
                if sent is not None and (a["associate"], a["at"]) in sent:
                    continue
                if waiting and (sent is not None or latest[a["associate"]] == a["at"]):
                    self._trouble_ntfy(trouble, a["associate"])
            # Older alerts drop off the object's list, never to come back: forget them too.
            self._troubles_sent[tid] = {(a["associate"], a["at"]) for a in alerted}
            if self.webhook_url:
                self._put(Delivery(self.webhook_url, {"kind": "trouble", "trouble": trouble},
                                   {"X-Callbell-Event": "trouble"}, what=f"webhook trouble {tid}", signed=True))
            if trouble.get("cleared_at") is not None:  # its id is never used again
                del self._troubles_sent[tid]

    def _trouble_ntfy(self, trouble: dict, associate: str) -> None:
        person = self.people.get(associate, {})
        if person.get("ntfy_topic") and person.get("ntfy_url"):
            headers = {"Authorization": f"Bearer {self.ntfy_token}"} if self.ntfy_token else {}
            self._put(Delivery(person["ntfy_url"] + "/", self.trouble_ntfy_message(trouble, associate), headers,
                               what=f"ntfy trouble {trouble['id']} → {associate}"))

    def trouble_ntfy_message(self, trouble: dict, associate: str) -> dict:
        """The ntfy JSON message for a trouble that alerted ``associate``: top priority, and an
        "Acknowledge" button that posts to the hub (docs/dashboard.md#troubles) — with
        ``public_url`` and the hub's key, like an alert's buttons."""
        kind = trouble_title(trouble)
        since = trouble["since"][11:16]  # HH:MM of the ISO time, in the store's zone
        msg = {"topic": self.people[associate]["ntfy_topic"],
               "title": f"Trouble — {kind}",
               "message": f"{trouble.get('text') or kind}. Since {since}.",
               "priority": PRIORITY_TROUBLE,
               "tags": ["warning", trouble["kind"]]}
        if self.public_url:
            msg["click"] = f"{self.public_url}/phone"
        if self.public_url and self.keys:
            token = trouble_token(self.keys, trouble["id"], trouble["since_ts"], associate)
            body = {"token": token, "trouble": trouble["id"], "associate": associate}
            msg["actions"] = [{"action": "http", "label": "Acknowledge", "method": "POST",
                               "url": f"{self.public_url}/api/v1/push/acknowledge",
                               "headers": {"Content-Type": "application/json"},
                               "body": json.dumps(body, separators=(",", ":")), "clear": True}]
        return msg
