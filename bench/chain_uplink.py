"""50 stores into one RabbitMQ: the event rate central holds, and the store→central delay.

    python bench/chain_uplink.py                      # 50 stores, 10/40/160/320/640 events/s each, 20 s a step
    python bench/chain_uplink.py --stores 20 --rates 5,50 --seconds 10

Every part is the real one, on this machine: a RabbitMQ node with the files of ``callbell chain
broker-config`` (TLS for the stores), the consumer into chDB (chain/consumer.py), and per store
a Mosquitto bridged out with its generated section, an SQLite event log written by hub.store's
Writer (one transaction every 100 ms, as the dispatcher batches) and the hub's uplink
(hub/uplink.py) sending it. The stores run in worker processes (10 to a process), central in
this one.

Each step offers a rate (events/s per store) for ``--seconds``: "held" is what central stored
within the step divided by its length, and the backlog what it had not stored when the step
ended (then it is let catch up before the next). The delay is central's ``received_at`` minus
the store's ``recorded_at`` (one clock: the same machine), p50 and p99 over the step's events.

Baseline, measured in the same run: a bare MQTT client publishing as many messages a second
as the uplinks do (one range per store and commit: stores × 10) straight to RabbitMQ, and a
subscriber timing them (no bridge, no TLS, no log, no warehouse): the transport's own floor.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: Stores simulated by one worker process.
STORES_PER_WORKER = 10
#: A store's writer commits this often, seconds (the dispatcher batches about so).
WRITE_EVERY_S = 0.1
#: How long a step may take to catch up before the next, seconds.
CATCH_UP_S = 120.0


def store_ids(n: int) -> list[str]:
    return [f"store-{i:03d}" for i in range(n)]


# -- the stores (worker processes) ---------------------------------------------------------
def worker(ids: list[str], bridges: dict[str, str], folder: str, commands, replies) -> None:
    import logging
    logging.basicConfig(level=logging.WARNING)
    stores = []
    try:
        _serve(ids, bridges, folder, commands, replies, stores)
    finally:  # the brokers run in sessions of their own: stop them whatever happened
        for s in stores:
            s.uplink.stop()
            s.broker.stop()
    replies.put(("stopped", None))


def _serve(ids, bridges, folder, commands, replies, stores) -> None:
    from callbell.broker import Broker
    from hub.domain.call import Transition
    from hub.store import Writer
    from hub.uplink import Uplink
    for sid in ids:
        base = Path(folder) / sid
        broker = Broker(base / "broker", extra_config=bridges[sid]).start()
        db = base / "callbell.db"
        Writer(db).close()  # the schema
        uplink = Uplink(sid, "callbell", "Europe/Berlin", 90.0, broker.url, db).start()
        stores.append(SimpleNamespace(id=sid, broker=broker, db=db, uplink=uplink, appended=0))
    replies.put(("ready", len(stores)))

    def write(store, rate: float, until: float) -> None:
        w = Writer(store.db)  # its connection belongs to this thread
        debt, last = 0.0, time.monotonic()
        while time.monotonic() < until:
            time.sleep(WRITE_EVERY_S)
            now = time.monotonic()
            debt += rate * (now - last)
            last = now
            n = int(debt)
            debt -= n
            if not n:
                continue
            w.begin()
            at = time.time()
            for _ in range(n):
                store.appended += 1
                w.append(Transition("alerted", "room-1", at, "hub", f"c-{store.appended:06d}", "ana", {"step": 0}), at)
            w.commit()
            store.uplink.send(SimpleNamespace(events=[n]))
        w.close()

    while True:
        cmd = commands.get()
        if cmd[0] == "stop":
            break
        _, rate, seconds = cmd
        until = time.monotonic() + seconds
        threads = [threading.Thread(target=write, args=(s, rate, until)) for s in stores]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        replies.put(("done", {s.id: s.appended for s in stores}))


# -- the baseline: RabbitMQ alone ----------------------------------------------------------
PROBE_USER, PROBE_PASSWORD = "bench-probe", "bench-probe-password"


def add_probe_account(definitions: Path) -> None:
    """A benchmark-only account that may use one topic of its own (added before the node starts)."""
    import json
    from chain.broker_config import rabbit_hash
    d = json.loads(definitions.read_text())
    vhost = d["vhosts"][0]["name"]
    d["users"].append({"name": PROBE_USER, "password_hash": rabbit_hash(PROBE_PASSWORD),
                       "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ""})
    d["permissions"].append({"user": PROBE_USER, "vhost": vhost, "configure": ".*", "write": ".*", "read": ".*"})
    d["topic_permissions"].append({"user": PROBE_USER, "vhost": vhost, "exchange": "amq.topic",
                                   "write": "^bench\\.", "read": "^bench\\."})
    definitions.write_text(json.dumps(d))


def transport_floor(port: int, rate: float, seconds: float) -> tuple[float, float]:
    """p50, p99 ms of bare QoS 1 publishes straight to RabbitMQ at ``rate`` messages a second,
    to a subscriber on the same node."""
    from callbell.mqtt import MqttLink
    url = f"mqtt://{PROBE_USER}:{PROBE_PASSWORD}@127.0.0.1:{port}?protocol=3"
    delays = []
    sub = MqttLink(url, "bench-probe-sub", subscriptions=[("bench/probe", 1)],
                   on_message=lambda m: delays.append((time.time() - float(m.payload)) * 1000), persistent=False)
    pub = MqttLink(url, "bench-probe-pub", persistent=False)
    sub.start()
    pub.start()
    sub.wait_connected(10)
    pub.wait_connected(10)
    time.sleep(1)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for _ in range(max(1, int(rate * WRITE_EVERY_S))):
            pub.publish("bench/probe", repr(time.time()).encode(), qos=1)
        time.sleep(WRITE_EVERY_S)
    time.sleep(2)
    pub.stop()
    sub.stop()
    delays.sort()
    if not delays:
        return float("nan"), float("nan")
    return delays[len(delays) // 2], delays[min(len(delays) - 1, int(len(delays) * 0.99))]


def cpu_seconds(rabbit_session: int, workers: list[int]) -> dict[str, float]:
    """CPU seconds used so far, by part: RabbitMQ (the processes of its session), the Mosquittos
    (children of the workers), the store workers (writers and uplinks) and this process (the
    consumer and chDB). Other programs on the machine are not counted."""
    tick = os.sysconf("SC_CLK_TCK")
    me = os.getpid()
    out = {"rabbitmq": 0.0, "mosquitto": 0.0, "stores": 0.0, "central": 0.0}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            raw = (d / "stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1:raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2:].split()
        used = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
        pid = int(d.name)
        if int(fields[3]) == rabbit_session:
            out["rabbitmq"] += used
        elif comm == "mosquitto" and int(fields[1]) in workers:
            out["mosquitto"] += used
        elif pid in workers:
            out["stores"] += used
        elif pid == me:
            out["central"] += used
    return out


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def stored(central) -> int:
    return sum(c[0] for c in central.counts().values())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stores", type=int, default=50, help="simulated stores, each its own Mosquitto bridged to "
                                                          "central (default: %(default)s)")
    p.add_argument("--rates", default="10,40,160,320,640",
                   help="events/s per store, one step each, comma-separated (default: %(default)s)")
    p.add_argument("--seconds", type=float, default=20.0, help="length of a step, seconds (default: %(default)s)")
    args = p.parse_args()
    try:
        rates = [float(r) for r in args.rates.split(",")]
    except ValueError:
        p.error(f"--rates: numbers separated by commas, got {args.rates!r}")
    if args.stores < 1 or args.seconds <= 0 or any(r <= 0 for r in rates):
        p.error("--stores, --seconds and every rate must be above 0")

    from callbell.broker import BrokerError, find_mosquitto
    from chain.rabbit_node import find_rabbitmq
    try:
        find_mosquitto()
        find_rabbitmq()
    except BrokerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    from tests.chain.harness import Central, chain_config
    ids = store_ids(args.stores)
    tmp = Path(tempfile.mkdtemp(prefix="callbell-uplink-bench-"))
    central = Central(chain_config(ids), tmp / "warehouse")
    add_probe_account(central.plan.definitions)
    workers = []
    started = time.monotonic()
    try:
        progress(f"starting RabbitMQ (TLS on {central.tls_port}) and the consumer into chDB …")
        central.start()
        bridges = {s: central.bridge(s) for s in ids}
        ctx = mp.get_context("spawn")
        for k in range(0, len(ids), STORES_PER_WORKER):
            commands, replies = ctx.Queue(), ctx.Queue()
            proc = ctx.Process(target=worker, args=(ids[k:k + STORES_PER_WORKER], bridges, str(tmp / "stores"),
                                                    commands, replies), daemon=True)
            proc.start()
            workers.append((proc, commands, replies))
        progress(f"starting {args.stores} stores (Mosquitto bridged out, SQLite log, uplink) in "
                 f"{len(workers)} worker process(es) …")
        ready = 0
        for _, _, replies in workers:
            kind, n = replies.get(timeout=180)
            assert kind == "ready", kind
            ready += n
            progress(f"  {ready}/{args.stores} stores up")
        time.sleep(3)  # every bridge up

        print(f"## {args.stores} stores into one RabbitMQ (chain/consumer.py into chDB), {args.seconds:g} s a step\n")
        print("| offered events/s | held events/s | backlog at the end | delay p50 ms | p99 ms | "
              "transport alone p50 / p99 ms | cores used: RabbitMQ / Mosquittos / stores / consumer |")
        print("|---:|---:|---:|---:|---:|---:|---|", flush=True)
        pids = [proc.pid for proc, _, _ in workers]
        appended: dict[str, int] = {s: 0 for s in ids}
        results = []
        for i, rate in enumerate(rates, 1):
            offered = rate * args.stores
            progress(f"step {i}/{len(rates)}: {rate:g} events/s in each store ({offered:,.0f}/s in all) "
                     f"for {args.seconds:g} s …")
            before = stored(central)
            cpu_before = cpu_seconds(central.node._proc.pid, pids)
            start = time.time()
            for _, commands, _ in workers:
                commands.put(("run", rate, args.seconds))
            for _, _, replies in workers:
                appended.update(replies.get(timeout=args.seconds + 120)[1])
            end = time.time()
            cpu = {k: (v - cpu_before[k]) / (end - start) for k, v in cpu_seconds(central.node._proc.pid, pids).items()}
            at_end = stored(central)
            held = (at_end - before) / (end - start)
            backlog = sum(appended.values()) - at_end
            progress(f"  central stored {at_end - before:,} events ({held:,.0f}/s); {backlog:,} not yet: catching up …")
            deadline = time.monotonic() + CATCH_UP_S
            while time.monotonic() < deadline and stored(central) < sum(appended.values()):
                time.sleep(0.5)
            left = sum(appended.values()) - stored(central)
            if left:
                progress(f"  {left:,} events still missing at central after {CATCH_UP_S:.0f} s")
            p50, p99 = central.warehouse.rows(
                "SELECT quantileExact(0.5)(received_at - recorded_at), quantileExact(0.99)(received_at - recorded_at) "
                "FROM events WHERE recorded_at >= {a:Float64} AND recorded_at < {b:Float64}", {"a": start, "b": end})[0]
            # The uplinks send a range per commit: stores × 10 messages a second, whatever the rate.
            progress(f"  baseline: bare MQTT at {args.stores / WRITE_EVERY_S:,.0f} messages/s …")
            floor = transport_floor(central.local_port, args.stores / WRITE_EVERY_S, min(args.seconds, 10))
            results.append((offered, held, backlog, left))
            print(f"| {offered:,.0f} | {held:,.0f} | {backlog:,} | {p50 * 1000:.0f} | {p99 * 1000:.0f} | "
                  f"{floor[0]:.1f} / {floor[1]:.1f} | {cpu['rabbitmq']:.2f} / {cpu['mosquitto']:.2f} / "
                  f"{cpu['stores']:.2f} / {cpu['central']:.2f} |", flush=True)
        kept_up = [r for r in results if r[2] <= r[0] * 1.0 and not r[3]]  # backlog under a second's worth
        print(f"\nHeld without falling behind (backlog under one second of events at the step's end): "
              + (f"up to {max(r[0] for r in kept_up):,.0f} events/s" if kept_up else "none of the rates")
              + (f"; every event arrived in the end" if not any(r[3] for r in results) else
                 "; SOME EVENTS DID NOT ARRIVE within the catch-up time"))
        progress(f"done in {time.monotonic() - started:.0f} s")
    finally:
        for proc, commands, _ in workers:
            if proc.is_alive():
                commands.put(("stop",))
        for proc, _, _ in workers:
            proc.join(30)
            if proc.is_alive():
                proc.terminate()
        central.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
