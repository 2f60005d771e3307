#!/usr/bin/env python3
"""Memory of the hub and of a device over a long run with a steady stream of presses.

Starts its own Mosquitto and hub (``bench_store`` of bench/press_to_lamp.py, hub as its own
process), one device as its own process (``callbell device --mock``, four rooms, driven through
its line interface exactly as an installer would), one dashboard page (an SSE client on
GET /api/v1/stream, open all the time as in a store) and, as the same-run baseline, a bare
``python -c 'import time; time.sleep(…)'`` process whose memory should not move at all.

Then, for ``--minutes`` (default 10), it cycles the rooms: press the call button, wait until
the hub's retained lamp says ``called``, press the staff button twice and wait for the hub's
call object to be ``answered``, then ``done`` — a steady stream of calls and answers that
the hub stores and the device sends from its outbox. Every ``--interval-s`` it samples each
process from /proc: VmRSS, RssAnon (the heap: Python objects, SQLite's page cache; no shared
libraries), Threads, open file descriptors, CPU.

A probe loaded into each process (PROBE_PY) adds what /proc cannot tell apart: Python's
allocated blocks, gc-tracked objects, SQLite's own heap (page caches, bounded by cache_size)
and, on mock pins, the state history gpiozero's MockPin keeps.

Growth = mean over the last third of the samples − mean over the first third, leaving out the
first ``--warmup-s`` (caches filling). The run fails (exit code 3) when, in the hub or the
device, RssAnon less SQLite's heap grows more than HEAP_GROWTH_LIMIT_MB, gc-tracked objects
(less the mock pins' history) more than OBJECT_GROWTH_LIMIT, or descriptors more than
FD_GROWTH_LIMIT.

    python bench/memory_soak.py                    # 10 minutes
    python bench/memory_soak.py --minutes 1 --interval-s 2 --json soak.json

Progress goes to stderr, the table to stdout.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from device_footprint import cpu_s  # noqa: E402
from press_to_dashboard import MeasuredClient  # noqa: E402
from press_to_lamp import (  # noqa: E402
    ROOT, STORE_ID, WAIT_S, BenchError, Observer, bench_store, loadavg, machine_info, say)

from callbell.protocol import Topics  # noqa: E402

#: Rooms of the one device: a Raspberry Pi serves up to four (firmware/pinmap.py slots 1-4).
DEVICE_ROOMS = 4
#: Allowed growth of RssAnon less SQLite's heap, first third → last third of the samples
#: after the warm-up, MB. The default run has about 450 calls between the thirds' middles, so
#: this catches about 1 KB or more per call (tens of MB over a store's month); the hub, once
#: warm, moved by 0.13 MB here (docs/benchmarks.md).
HEAP_GROWTH_LIMIT_MB = 0.5
#: Allowed growth of gc-tracked objects (less MockPin history entries), same thirds: about two
#: per call of the default run. Python objects that outlive their call show up here first.
OBJECT_GROWTH_LIMIT = 1000
#: Seconds at the start left out of the growth figures: the SQLite page cache, the dashboard's
#: resume buffer and Python's free lists fill during the first calls.
WARMUP_S = 60.0
#: Allowed growth of open file descriptors (sockets, database files): none should leak.
FD_GROWTH_LIMIT = 2
#: Longest pause between two writes of the probe, s (it also writes twice per sample interval).
PROBE_MAX_S = 5.0
#: Exit code when a limit is exceeded (1 is a broken run, 2 a usage error).
EXIT_GROWTH = 3
#: Environment variables read by the probe below: the folder it writes to, seconds between writes.
PROBE_DIR_ENV, PROBE_S_ENV = "CALLBELL_SOAK_PROBE_DIR", "CALLBELL_SOAK_PROBE_S"

#: What /proc cannot tell apart, measured inside the process: written as ``sitecustomize.py``
#: into the run's temporary folder, which goes first on the PYTHONPATH of the hub, the device
#: and the baseline, so Python loads it at start-up (no change to Callbell's code; it hides a
#: sitecustomize the interpreter may have, which the project's virtualenv has not). A daemon
#: thread writes, every PROBE_S_ENV seconds, to PROBE_DIR_ENV/<pid>.json: Python's allocated
#: memory blocks (sys.getallocatedblocks: every live object and buffer from Python's allocator),
#: gc-tracked objects, and SQLite's own heap (sqlite3_memory_used: page caches, statements),
#: which is bounded by each connection's cache_size and grows with the database until then.
PROBE_PY = f"""\
import gc, json, os, sys, threading, time


def _sqlite_heap():
    try:
        import ctypes
        used = ctypes.CDLL(sys.modules["_sqlite3"].__file__).sqlite3_memory_used
        used.restype = ctypes.c_int64
        return used
    except Exception:
        return None


def _probe(folder, period):
    path = os.path.join(folder, f"{{os.getpid()}}.json")
    sqlite_heap = None
    while True:
        if sqlite_heap is None and "_sqlite3" in sys.modules:
            sqlite_heap = _sqlite_heap()
        blocks = sys.getallocatedblocks()
        objects = gc.get_objects()
        mock = sys.modules.get("gpiozero.pins.mock")
        history = sum(len(o.states) for o in objects if mock and isinstance(o, mock.MockPin))
        data = {{"py_blocks": blocks, "gc_objects": len(objects), "mock_pin_states": history,
                "sqlite_mb": sqlite_heap() / 1048576 if sqlite_heap else 0.0}}
        del objects
        with open(path + ".tmp", "w") as f:
            json.dump(data, f)
        os.replace(path + ".tmp", path)
        time.sleep(period)


if os.environ.get("{PROBE_DIR_ENV}"):
    threading.Thread(target=_probe, args=(os.environ["{PROBE_DIR_ENV}"], float(os.environ["{PROBE_S_ENV}"])),
                     name="soak-probe", daemon=True).start()
"""


# -- /proc sampling -------------------------------------------------------------------------
def proc_sample(pid: int, probes: Path | None = None) -> dict:
    """One reading of a process: memory in MB, threads, open descriptors, CPU seconds; with
    ``probes``, also the last figures its probe (PROBE_PY) wrote there."""
    status = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        status[key] = value.split()
    kb = lambda key: int(status[key][0]) / 1024 if key in status else float("nan")  # noqa: E731
    sample = {"rss_mb": kb("VmRSS"), "anon_mb": kb("RssAnon"), "hwm_mb": kb("VmHWM"),
              "threads": int(status["Threads"][0]), "fds": len(os.listdir(f"/proc/{pid}/fd")),
              "cpu_s": cpu_s(pid)}
    if probes is not None:
        try:
            probe = json.loads((probes / f"{pid}.json").read_text())
        except (OSError, ValueError) as e:
            raise BenchError(f"no figures from the probe in process {pid}: {e}") from None
        sample.update(probe)
        # The heap without SQLite's page caches: what a leak in Python code or in a C library
        # other than SQLite would grow.
        sample["anon_less_sqlite_mb"] = sample["anon_mb"] - probe["sqlite_mb"]
        # gpiozero's MockPin keeps every state change (one tuple each) for tests to inspect:
        # a property of mock pins, not of the device on real GPIO, so counted apart.
        sample["objects_less_mock"] = probe["gc_objects"] - probe["mock_pin_states"]
    return sample


def install_probe(folder: Path, period_s: float) -> Path:
    """Write the probe as sitecustomize.py into ``folder``/probe and put it first on the
    PYTHONPATH of every process started from here on; returns where the figures go."""
    code, figures = folder / "probe", folder / "probe" / "figures"
    figures.mkdir(parents=True)
    (code / "sitecustomize.py").write_text(PROBE_PY)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(code), os.environ.get("PYTHONPATH")) if p)
    os.environ[PROBE_DIR_ENV], os.environ[PROBE_S_ENV] = str(figures), f"{period_s:g}"
    return figures


def growth(samples: list[dict], key: str) -> tuple[float, float, float]:
    """(mean of the first third, mean of the last third, difference) of ``key``."""
    third = max(1, len(samples) // 3)
    first = sum(s[key] for s in samples[:third]) / third
    last = sum(s[key] for s in samples[-third:]) / third
    return first, last, last - first


# -- the device -----------------------------------------------------------------------------
def write_device_config(path: Path, broker_url: str, rooms: list[str]) -> Path:
    """A device.toml for the benchmark store: one Pi, one slot per room."""
    blocks = "\n".join(f'[[rooms]]\nid = "{r}"\nslot = {i}\n' for i, r in enumerate(rooms, 1))
    path.write_text(f"""# written by bench/memory_soak.py
[device]
id = "soak-pi"
store = "{STORE_ID}"
broker = "{broker_url}"
outbox = "outbox.db"

{blocks}""")
    return path


class DeviceProcess:
    """``callbell device --mock`` as its own process; commands on its stdin, its output lines
    (lamp/light/status/error) kept in order."""

    def __init__(self, config: Path):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "-q", "device", "--config", str(config), "--mock"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=env, cwd=str(config.parent), start_new_session=True)
        self.lines: list[str] = []
        self.errors: list[str] = []
        self._reader = threading.Thread(target=self._read, name="device-stdout", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            line = line.strip()
            self.lines.append(line)
            if line.startswith("error") or "Traceback" in line:
                self.errors.append(line)
            if len(self.lines) > 1000:  # keep this process's own memory flat too
                del self.lines[:500]

    def wait_for(self, line: str, timeout_s: float = WAIT_S * 2) -> None:
        deadline = time.monotonic() + timeout_s
        while line not in self.lines:
            self.check()
            if time.monotonic() > deadline:
                raise BenchError(f"the device did not print {line!r} within {timeout_s:g} s "
                                 f"(last lines: {self.lines[-5:]})")
            time.sleep(0.05)

    def command(self, line: str) -> None:
        self.check()
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def check(self) -> None:
        if self.proc.poll() is not None:
            raise BenchError(f"the device exited with code {self.proc.returncode}: {self.lines[-10:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


# -- the stream of presses ------------------------------------------------------------------
class PressStream(threading.Thread):
    """Cycles the rooms: press, then staff button twice, each step confirmed by the hub's
    lamp or call object on MQTT; ``gap_s`` between steps. Counts calls; the first failure is kept."""

    def __init__(self, device: DeviceProcess, obs: Observer, rooms: list[str], gap_s: float):
        super().__init__(name="press-stream", daemon=True)
        self.device, self.obs, self.rooms, self.gap_s = device, obs, rooms, gap_s
        self.calls = 0
        self.events = 0
        self.error: BaseException | None = None
        self._halt = threading.Event()

    def _step(self, command: str, room: str, what: str, pred) -> dict:
        """Send one command and wait for the hub's message matching ``pred``; returns it."""
        self.obs.waiter.arm(pred)
        self.device.command(f"{command} {room}")
        _, data = self.obs.waiter.wait(f"{what} after '{command} {room}'")
        self.events += 1
        self._halt.wait(self.gap_s)
        return data

    def run(self) -> None:
        try:
            while not self._halt.is_set():
                for room in self.rooms:
                    lamp = self._step("press", room, f"the hub's lamp of {room} to be called",
                                      lambda kind, ident, d, room=room:
                                      kind == "lamp" and ident == room and d.get("state") == "called")
                    # presence answers the open call, then marks the answered call done
                    # (docs/spec/PROTOCOL.md); the lamp goes idle at the first, so follow the call object.
                    for status in ("answered", "done"):
                        self._step("presence", room, f"call {lamp.get('call')} to be {status}",
                                   lambda kind, ident, d, call=lamp.get("call"), status=status:
                                   kind == "call" and ident == call and d.get("status") == status)
                    self.calls += 1
                    if self.obs.rejected:
                        raise BenchError(f"the hub rejected a message: {self.obs.rejected[0]}")
                    if self._halt.is_set():
                        break
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            self.error = e

    def stop(self) -> None:
        self._halt.set()
        self.join(WAIT_S * 3)


# -- report ---------------------------------------------------------------------------------
#: Which processes the limits apply to (the bare Python is the baseline).
CHECKED = ("hub", "device")


def report(result: dict) -> str:
    m, cfg = result["machine"], result["config"]
    names = list(result["processes"])
    lines = ["", "Callbell benchmark: memory over a long run",
             f"machine : {m['nproc']} CPU(s), {m['cpu']}; {m['kernel']}",
             f"software: Python {m['python']}, Mosquitto {m['mosquitto']}, SQLite {m['sqlite']}",
             f"run     : {cfg['minutes']:g} min, a sample every {cfg['interval_s']:g} s, {DEVICE_ROOMS} rooms on one "
             f"device, {cfg['gap_s']:g} s between steps, one SSE page open; {result['calls']} calls "
             f"({result['events']} events) confirmed by the hub",
             f"load    : {m['loadavg']}", "",
             "samples: RSS, RssAnon and SQLite's heap in MB; Python's allocated blocks and gc objects in "
             "thousands; fds",
             f"{'t (s)':>7} {'calls':>6}  " + "  ".join(f"{n:>38}" for n in names)]
    for row in result["samples"]:
        cells = [f"{s['rss_mb']:6.1f} {s['anon_mb']:6.1f} {s['sqlite_mb']:5.2f} {s['py_blocks'] / 1000:6.1f}"
                 f" {s['gc_objects'] / 1000:6.1f} {s['fds']:3d}" for s in (row[n] for n in names)]
        lines.append(f"{row['t_s']:7.0f} {row['calls']:>6}  " + "  ".join(f"{c:>38}" for c in cells))
    lines += ["", f"growth: mean of the last third − mean of the first third of the samples after the first "
                  f"{cfg['warmup_s']:g} s ({result['calls_between_thirds']} calls between the thirds' middles)",
              f"{'process':<12}{'RSS MB':>8}{'RssAnon':>9}{'SQLite':>8}{'anon−SQLite':>12}{'Py blocks':>10}"
              f"{'gc objects':>11}{'mock pins':>10}{'objects−mock':>13}{'fds':>5}{'threads':>8}{'CPU':>7}  verdict"]
    for n in names:
        p = result["processes"][n]
        g = lambda k: p[k]["growth"]  # noqa: E731
        lines.append(f"{n:<12}{g('rss_mb'):>+8.2f}{g('anon_mb'):>+9.2f}{g('sqlite_mb'):>+8.2f}"
                     f"{g('anon_less_sqlite_mb'):>+12.2f}{g('py_blocks'):>+10.0f}{g('gc_objects'):>+11.0f}"
                     f"{g('mock_pin_states'):>+10.0f}{g('objects_less_mock'):>+13.0f}{g('fds'):>+5.1f}"
                     f"{g('threads'):>+8.1f}{p['cpu_pct']:>6.1f}%  {p['verdict']}")
    lines += ["", f"limits (hub, device): anon−SQLite ≤ +{HEAP_GROWTH_LIMIT_MB:g} MB, objects−mock ≤ "
                  f"+{OBJECT_GROWTH_LIMIT}, fds ≤ +{FD_GROWTH_LIMIT}. mock pins = state changes kept by "
                  "gpiozero's MockPin (device on mock pins only).",
              "SQLite's heap (page caches) is bounded by each connection's cache_size; it grows with the "
              "database until it gets there. CPU = % of one core after the warm-up."]
    return "\n".join(lines)


def summarise(name: str, samples: list[dict]) -> dict:
    """Growth figures and verdict of one process over ``samples`` (the rows after the warm-up)."""
    mine = [row[name] for row in samples]
    seconds = samples[-1]["t_s"] - samples[0]["t_s"]
    out = {}
    for key in ("rss_mb", "anon_mb", "sqlite_mb", "anon_less_sqlite_mb", "py_blocks", "gc_objects",
                "mock_pin_states", "objects_less_mock", "fds", "threads"):
        first, last, diff = growth(mine, key)
        out[key] = {"first": first, "last": last, "growth": diff}
    out["peak_rss_mb"] = max(s["hwm_mb"] for s in mine)
    out["cpu_pct"] = (mine[-1]["cpu_s"] - mine[0]["cpu_s"]) / seconds * 100 if seconds > 0 else 0.0
    problems = []
    if name in CHECKED:
        heap, objects, fds = (out[k]["growth"] for k in ("anon_less_sqlite_mb", "objects_less_mock", "fds"))
        if heap > HEAP_GROWTH_LIMIT_MB:
            problems.append(f"anon−SQLite +{heap:.2f} MB > {HEAP_GROWTH_LIMIT_MB:g}")
        if objects > OBJECT_GROWTH_LIMIT:
            problems.append(f"objects +{objects:.0f} > {OBJECT_GROWTH_LIMIT}")
        if fds > FD_GROWTH_LIMIT:
            problems.append(f"fds +{fds:.1f} > {FD_GROWTH_LIMIT}")
    out["problems"] = problems
    out["verdict"] = "—" if name not in CHECKED else ("ok" if not problems else "GROWS: " + "; ".join(problems))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="memory_soak.py",
        description="Sample the memory (/proc: RSS, RssAnon, descriptors, threads) of the Callbell "
                    "hub and of a device process over a long run with a steady stream of presses "
                    "and answers, next to a bare Python process as the same-run baseline. Exits "
                    f"with code {EXIT_GROWTH} if the hub or the device grows beyond its limit.",
        epilog="Example: python bench/memory_soak.py --minutes 10 --json soak.json. "
               "See docs/benchmarks.md.")
    ap.add_argument("--minutes", type=float, default=10.0, help="length of the run (default: %(default)s)")
    ap.add_argument("--interval-s", type=float, default=10.0,
                    help="seconds between samples (default: %(default)s)")
    ap.add_argument("--warmup-s", type=float, default=WARMUP_S,
                    help="seconds at the start left out of the growth figures (default: %(default)s)")
    ap.add_argument("--gap-s", type=float, default=0.25,
                    help="pause between two steps (press, answer, done) of the stream (default: %(default)s)")
    ap.add_argument("--tmp", type=Path, default=None, metavar="DIR",
                    help="where to create the temporary folder (default: the system's)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, databases)")
    ap.add_argument("--json", type=Path, metavar="FILE", help="also write the samples and figures as JSON")
    args = ap.parse_args(argv)
    if args.minutes <= 0 or args.interval_s <= 0 or args.gap_s < 0:
        ap.error("--minutes and --interval-s must be positive, --gap-s at least 0")
    if (args.minutes * 60 - args.warmup_s) / args.interval_s < 6:
        ap.error("at least 6 samples after the warm-up are needed (two per third): "
                 "run longer, lower --interval-s or --warmup-s")
    args.rooms, args.hub = DEVICE_ROOMS, "process"  # what bench_store reads

    load_at_start = loadavg()
    probe_folder = Path(tempfile.mkdtemp(prefix="callbell-bench-probe-", dir=args.tmp))
    try:
        probes = install_probe(probe_folder, min(PROBE_MAX_S, args.interval_s / 2))
        return soak(args, probes, load_at_start)
    finally:
        shutil.rmtree(probe_folder, ignore_errors=True)


def soak(args, probes: Path, load_at_start: str) -> int:
    """The run itself, once the probe is installed for every process started from here."""
    with bench_store(args, "callbell-bench-soak-") as store:
        device = stream = page = obs = None
        bare = subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({args.minutes * 60 + 120:.0f})"])
        try:
            device = DeviceProcess(write_device_config(store.tmp / "device.toml", store.broker.url, store.rooms))
            device.wait_for("status ok")
            say(f"device (pid {device.proc.pid}) connected with {DEVICE_ROOMS} rooms")
            page = MeasuredClient(store.http_port)
            if not page.snapshot.wait(WAIT_S):
                raise BenchError("the SSE page got no snapshot")
            obs = Observer(store.broker.host, store.broker.port, Topics("callbell", STORE_ID))
            stream = PressStream(device, obs, store.rooms, args.gap_s)
            pids = {"hub": store.hub.proc.pid, "device": device.proc.pid, "bare python": bare.pid}
            stream.start()
            # The first sample needs figures written after start-up, not during the imports.
            started, deadline = time.time(), time.monotonic() + WAIT_S
            while not all((probes / f"{pid}.json").exists() and (probes / f"{pid}.json").stat().st_mtime > started
                          for pid in pids.values()):
                if time.monotonic() > deadline:
                    raise BenchError("the memory probe did not start in every process (sitecustomize not loaded?)")
                time.sleep(0.1)

            samples, t_start = [], time.monotonic()
            end = t_start + args.minutes * 60
            next_at = t_start
            while True:
                row = {"t_s": time.monotonic() - t_start, "calls": stream.calls}
                row.update({name: proc_sample(pid, probes) for name, pid in pids.items()})
                samples.append(row)
                h, d = row["hub"], row["device"]
                say(f"{row['t_s']:6.0f} s  {row['calls']:5d} calls  hub RSS {h['rss_mb']:.1f} MB (anon {h['anon_mb']:.1f}, "
                    f"SQLite {h['sqlite_mb']:.2f})  device RSS {d['rss_mb']:.1f} MB (anon {d['anon_mb']:.1f}, "
                    f"SQLite {d['sqlite_mb']:.2f})")
                if stream.error is not None:
                    raise BenchError(f"the press stream stopped: {stream.error}")
                if page.ended:
                    raise BenchError(f"the SSE page's stream ended: {page.error}")
                store.hub.check()
                device.check()
                next_at += args.interval_s
                if next_at > end + 1e-6:
                    break
                time.sleep(max(0.0, next_at - time.monotonic()))
            warm = [row for row in samples if row["t_s"] >= args.warmup_s]
            if len(warm) < 6:
                raise BenchError(f"only {len(warm)} samples after the {args.warmup_s:g} s warm-up: "
                                 "run longer or sample more often")
            third = len(warm) // 3
            calls_between = warm[-1 - third // 2]["calls"] - warm[third // 2]["calls"]
            stream.stop()
            if stream.error is not None:
                raise BenchError(f"the press stream stopped: {stream.error}")

            processes = {name: summarise(name, warm) for name in pids}
            result = {
                "machine": machine_info(store.tmp, load_at_start),
                "config": {"minutes": args.minutes, "interval_s": args.interval_s, "gap_s": args.gap_s,
                           "warmup_s": args.warmup_s},
                "limits": {"anon_less_sqlite_mb": HEAP_GROWTH_LIMIT_MB, "objects_less_mock": OBJECT_GROWTH_LIMIT,
                           "fds": FD_GROWTH_LIMIT},
                "calls_between_thirds": calls_between,
                "calls": stream.calls, "events": stream.events, "device_errors": device.errors[:10],
                "processes": processes, "samples": samples,
            }
            print(report(result), flush=True)
            if device.errors:
                print(f"device reported errors: {device.errors[:3]}", flush=True)
            if args.json:
                args.json.write_text(json.dumps(result, indent=1) + "\n")
                say(f"wrote {args.json}")
            grown = [n for n, p in processes.items() if p["problems"]]
            if grown:
                say(f"memory grows: {', '.join(grown)}")
                return EXIT_GROWTH
            return 0
        finally:
            if stream is not None:
                stream.stop()
            for thing in (page, obs):
                if thing is not None:
                    thing.close()
            if device is not None:
                device.stop()
            bare.kill()
            bare.wait()


if __name__ == "__main__":
    sys.exit(main())
