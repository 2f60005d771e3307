"""The house's plan, held by a test: which package may import which (docs/architecture.md).

    callbell   the wire both ends share: protocol, MQTT client, Mosquitto (run it, its files),
               the wire to systemd (readiness, watchdog),
               and under them settings loading and the clock; imports none of ours
    firmware   the device                       → callbell
    hub        the store's server               → callbell (and dashboard: the pages it serves)
    chain      head office                      → callbell, hub
    app        the commands: cli, demo, broker config, simulation → anything

and no cycle between modules, and the domain core without I/O.
"""
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OURS = ("callbell", "firmware", "hub", "chain", "app", "dashboard")

MAY_IMPORT = {
    "callbell": set(),
    "dashboard": set(),
    "firmware": {"callbell"},
    "hub": {"callbell", "dashboard"},
    "chain": {"callbell", "hub"},
    "app": {"callbell", "firmware", "hub", "chain", "dashboard"},
}

#: What callbell/ holds: the wire and what both ends stand on, nothing that runs a store.
WIRE = {"callbell", "callbell.protocol", "callbell.chain_wire", "callbell.mqtt", "callbell.broker",
        "callbell.broker_files", "callbell.settings", "callbell.clock", "callbell.systemd_notify"}

#: The domain core (hub/domain) does no I/O: none of these, and nothing of ours outside it
#: but the wire's payload types.
IO_MODULES = {"socket", "sqlite3", "sqlite_utils", "paho", "fastapi", "uvicorn", "starlette", "httpx",
              "urllib", "requests", "subprocess", "threading", "asyncio", "gpiozero", "time"}


def modules() -> dict[str, Path]:
    found = {}
    for package in OURS:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(path: Path) -> set[str]:
    """Every module name ``path`` imports, at the top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def graph() -> dict[str, set[str]]:
    mods = modules()

    def ours(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    edges = {}
    for mod, path in mods.items():
        targets = {ours(n) for n in imports(path) if n.split(".")[0] in OURS}
        # A package's own modules, and a module's parent packages, are not dependencies.
        edges[mod] = {t for t in targets if t and t != mod and not mod.startswith(t + ".")}
    return edges


def test_each_package_imports_only_the_layers_below_it():
    wrong = sorted(f"{m} imports {t}" for m, targets in graph().items() for t in targets
                   if t.split(".")[0] != m.split(".")[0] and t.split(".")[0] not in MAY_IMPORT[m.split(".")[0]])
    assert wrong == []


def test_callbell_holds_only_the_wire_and_what_both_ends_stand_on():
    assert {m for m in modules() if m.split(".")[0] == "callbell"} == WIRE


def test_no_module_imports_itself_round_a_cycle():
    edges = graph()
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in edges:
        if v not in index:
            visit(v)
    assert cycles == []


def test_the_domain_core_does_no_io_and_knows_nothing_of_the_transports():
    found = []
    for mod, path in modules().items():
        if not mod.startswith("hub.domain"):
            continue
        for name in imports(path):
            top = name.split(".")[0]
            if top in IO_MODULES or (top in OURS and not name.startswith(("hub.domain", "callbell.protocol",
                                                                              "callbell.clock"))):
                found.append(f"{mod} imports {name}")
    assert found == []


def test_the_rules_see_a_wrong_import(tmp_path, monkeypatch):
    """The checks above would pass on an empty house: show they catch an upward import."""
    fake = tmp_path / "firmware"
    fake.mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "sneaky.py").write_text("from hub.config import load_store_config\n")
    for package in OURS:
        if package != "firmware":
            (tmp_path / package).symlink_to(ROOT / package)
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    edges = graph()
    assert "hub.config" in edges["firmware.sneaky"]
    bad = [t for t in edges["firmware.sneaky"] if t.split(".")[0] not in MAY_IMPORT["firmware"]]
    assert bad == ["hub.config"]
