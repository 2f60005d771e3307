"""The suite must pass on a loaded 2-core machine (issue 17, point 8): what it needs of itself."""
import ast

from hypothesis import HealthCheck, settings

from tests.helpers import ROOT


def test_property_tests_are_not_timed_so_a_loaded_machine_cannot_fail_them():
    assert settings.default.deadline is None
    assert HealthCheck.too_slow in settings.default.suppress_health_check


def test_no_property_test_sets_a_deadline_of_its_own():
    timed = []
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "settings":
                for kw in node.keywords:
                    if kw.arg == "deadline" and not (isinstance(kw.value, ast.Constant) and kw.value.value is None):
                        timed.append(f"{path.name}:{node.lineno}")
    assert not timed, f"deadlines fail on a loaded machine: {timed}"
