"""Fair service at the MQTT edge: each device's messages are admitted at a bounded rate.

A token bucket per device (pure: the caller passes the time). A device that sends faster
than its bucket allows is *storming*: a stuck or shorted input, a firmware fault, or a device
that was taken over. From the first message its bucket cannot pay for, every message of that
device is refused — counted, not worked — until it has stayed within its rate for
STORM_CALM_S; one ``storm`` trouble stands for the whole episode. The decision costs a dict
look-up and a few float operations, so the hub can make it on the MQTT thread before a
message reaches the dispatcher's queue (hub/mqtt_channel.py), and a flood costs microseconds
a message instead of a place in the queue ahead of every other room's press.

    >>> a = Admission(rate_per_s=1.0, burst=2)
    >>> [a.admit("pi-a", 0.0).admitted for _ in range(3)]
    [True, True, False]
    >>> a.admit("pi-b", 0.0).admitted        # another device has a bucket of its own
    True
"""
from __future__ import annotations

from dataclasses import dataclass

#: Messages a second one device may send, sustained. A real room's worst case is a shopper
#: pressing as fast as a hand can (~5 presses/s, a 50 ms debounce allows at most 20) while
#: staff badge at the door; a device serves at most four rooms (firmware/pinmap.py) and adds
#: a heartbeat every 10 s. 20/s is above four rooms of hurried hands, far below the ~1,000/s a
#: script can send, and 20 devices at it are still within what the hub stores (docs/benchmarks.md).
DEVICE_RATE_PER_S = 20.0

#: Messages a device may send at once, above its rate. A device that was cut off from the
#: broker republishes its whole outbox on reconnect: at a busy store's ~40 events per room and
#: hour (press, reminders, presence), 200 covers four rooms for more than an hour offline. The
#: broker's own backlog for a hub that was down arrives at once too (docs/security.md, MQTT
#: edge, says what happens beyond it). It also bounds what one storm can do before it is
#: stopped: at most 200 events, so at most ~100 calls (call, cancel, call, ...).
DEVICE_BURST = 200

#: Seconds a storming device must stay within its rate before its messages are worked again
#: and its ``storm`` trouble clears. Long enough that a flood in bursts stays one episode (one
#: trouble, one alert), short enough that a fixed device serves its rooms again within minutes.
STORM_CALM_S = 60.0

#: Most devices with a bucket. Only configured devices (or, without [[devices]], whatever
#: device names the messages carry) get one; past this, unknown names share one bucket, so a
#: sender inventing names cannot grow memory without end.
MAX_BUCKETS = 10_000
OTHERS = "(others)"


@dataclass(frozen=True)
class Verdict:
    admitted: bool
    #: This message started a storm: raise the ``storm`` trouble (once per episode).
    storm_began: bool = False


@dataclass
class _Bucket:
    tokens: float
    at: float                    # when ``tokens`` was last brought up to date, s
    storm_since: float | None = None
    dry_at: float = 0.0          # last time a message found the bucket empty, s
    refused: int = 0             # messages refused in the current storm


@dataclass(frozen=True)
class StormOver:
    device: str
    since: float    # when the storm began, s
    refused: int    # messages refused during it


class Admission:
    """Per-device token buckets and storm episodes. Not thread-safe: one caller (the MQTT thread)."""

    def __init__(self, rate_per_s: float = DEVICE_RATE_PER_S, burst: int = DEVICE_BURST,
                 calm_s: float = STORM_CALM_S, max_buckets: int = MAX_BUCKETS):
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be > 0 and burst at least 1")
        self.rate_per_s, self.burst, self.calm_s, self.max_buckets = rate_per_s, burst, calm_s, max_buckets
        self._buckets: dict[str, _Bucket] = {}

    def admit(self, device: str, now: float) -> Verdict:
        """One message from ``device`` at ``now`` (seconds): may it be worked?"""
        b = self._buckets.get(device)
        if b is None:
            if len(self._buckets) >= self.max_buckets:
                device = OTHERS
                b = self._buckets.get(device)
            if b is None:
                b = self._buckets[device] = _Bucket(float(self.burst), now)
        if now > b.at:
            b.tokens = min(float(self.burst), b.tokens + (now - b.at) * self.rate_per_s)
            b.at = now
        paid = b.tokens >= 1.0
        if paid:
            b.tokens -= 1.0
        else:
            b.dry_at = now
        if b.storm_since is not None:
            b.refused += 1
            return Verdict(False)
        if paid:
            return Verdict(True)
        b.storm_since, b.refused = now, 1
        return Verdict(False, storm_began=True)

    def storming(self, device: str) -> bool:
        b = self._buckets.get(device)
        return b is not None and b.storm_since is not None

    def calmed(self, now: float) -> list[StormOver]:
        """The storms that are over at ``now``: their devices' buckets have not run dry for
        ``calm_s``. Their messages are admitted again from here on."""
        over = []
        for device, b in self._buckets.items():
            if b.storm_since is not None and now - b.dry_at >= self.calm_s:
                over.append(StormOver(device, b.storm_since, b.refused))
                b.storm_since, b.refused = None, 0
        return over
