"""The hardware documentation matches the firmware's pin map and does not rot.

hardware/draw.py generates the pin map table, the SVG drawings and two tables in
hardware/README.md from firmware/pinmap.py and hardware/parts.csv; these tests regenerate them
in memory and compare with what is committed.
"""
from __future__ import annotations

import csv
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HARDWARE = REPO / "hardware"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from firmware.pinmap import BCM_TO_PHYSICAL, DEFAULT_SLOTS  # noqa: E402
from hardware import draw  # noqa: E402

SVG_NS = "{http://www.w3.org/2000/svg}"
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def used_gpios() -> list[int]:
    return [draw.bcm(pin) for slot in DEFAULT_SLOTS for pin in slot.as_dict().values()]


def relative_links(markdown: str) -> list[str]:
    """Targets of markdown links and images that point into the repository."""
    targets = []
    for target in LINK.findall(markdown):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # http:, mailto:, in-page anchors
        targets.append(target.split("#", 1)[0])
    return targets


def test_documented_pin_map_matches_the_firmware_defaults():
    committed = (HARDWARE / "pinmap.md").read_text(encoding="utf-8")
    assert committed == draw.pinmap_markdown(), (
        "hardware/pinmap.md is out of date: run `python -m hardware.draw`")


def test_pin_map_table_lists_every_pin_of_every_slot_with_its_header_pin():
    table = draw.pinmap_markdown()
    for number, slot in enumerate(DEFAULT_SLOTS, start=1):
        for function, gpio in slot.as_dict().items():
            pin = BCM_TO_PHYSICAL[draw.bcm(gpio)]
            row = f"| {number} | J{number} | {draw.FUNCTIONS[function][0]} | {gpio} | {pin} |"
            assert row in table


def test_no_gpio_is_used_twice_across_slots():
    gpios = used_gpios()
    assert len(gpios) == len(set(gpios)), sorted(g for g in gpios if gpios.count(g) > 1)


def test_the_pin_map_leaves_i2c_and_the_serial_console_free():
    assert not {2, 3, 14, 15} & set(used_gpios())


def test_every_default_pin_is_on_the_40_pin_header():
    for gpio in used_gpios():
        assert gpio in BCM_TO_PHYSICAL


def test_the_header_drawing_knows_all_40_pins_exactly_once():
    pins = list(BCM_TO_PHYSICAL.values()) + list(draw.POWER_PINS)
    assert sorted(pins) == list(range(1, 41))


def test_every_lamp_gate_is_driven_low_by_the_boot_config_line():
    line = draw.boot_config_line()
    assert line.startswith("gpio=") and line.endswith("=op,dl")
    listed = {int(n) for n in line[len("gpio="):-len("=op,dl")].split(",")}
    expected = {draw.bcm(getattr(slot, f)) for slot in DEFAULT_SLOTS for f in ("lamp", "light")}
    assert listed == expected


@pytest.mark.parametrize("name", sorted(draw.render_all()))
def test_each_drawing_is_well_formed_svg_with_a_title(name):
    root = ET.fromstring(draw.render_all()[name])
    assert root.tag == f"{SVG_NS}svg"
    assert root.find(f"{SVG_NS}title").text
    assert int(root.get("width")) > 0 and int(root.get("height")) > 0


def test_committed_drawings_equal_freshly_generated_ones():
    stale = [name for name, text in draw.render_all().items()
             if not (HARDWARE / name).exists()
             or (HARDWARE / name).read_text(encoding="utf-8") != text]
    assert not stale, f"out of date: {stale}; run `python -m hardware.draw`"


def test_the_drawings_are_generated_deterministically():
    assert draw.render_all() == draw.render_all()


def test_the_header_drawing_names_every_gpio_of_the_pin_map():
    svg = draw.render_all()["pi-header.svg"]
    for slot in DEFAULT_SLOTS:
        for gpio in slot.as_dict().values():
            assert re.search(rf"{gpio}\b", svg), gpio


def test_the_readme_embeds_every_drawing():
    readme = (HARDWARE / "README.md").read_text(encoding="utf-8")
    images = set(re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", readme))
    assert set(draw.render_all()) <= images


def test_every_svg_and_relative_link_in_the_hardware_docs_exists():
    for doc in sorted(HARDWARE.glob("*.md")):
        for target in relative_links(doc.read_text(encoding="utf-8")):
            assert (doc.parent / target).exists(), f"{doc.name} links to missing {target}"


def test_every_in_page_anchor_in_the_hardware_docs_exists():
    def anchors(markdown: str) -> set[str]:
        slugs = set()
        for heading in re.findall(r"^#+\s+(.+)$", markdown, flags=re.M):
            slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
            slugs.add(slug)
        return slugs

    for doc in sorted(HARDWARE.glob("*.md")):
        for target in LINK.findall(doc.read_text(encoding="utf-8")):
            if "#" not in target or re.match(r"^[a-z]+:", target):
                continue
            path, anchor = target.split("#", 1)
            linked = doc if not path else doc.parent / path
            assert anchor in anchors(linked.read_text(encoding="utf-8")), f"{doc.name}: {target}"


def test_readme_tables_match_parts_csv_and_the_pin_map():
    readme = (HARDWARE / "README.md").read_text(encoding="utf-8")
    assert readme == draw.readme_with_tables(readme), (
        "hardware/README.md tables are out of date: run `python -m hardware.draw`")


def test_every_part_has_a_quantity_a_price_and_a_purpose():
    with open(HARDWARE / "parts.csv", encoding="utf-8", newline="") as f:
        parts = list(csv.DictReader(f))
    assert parts
    for part in parts:
        assert None not in part and None not in part.values(), part
        assert part["need"] in ("required", "optional", "alternative"), part["item"]
        assert part["qty_per_room"] or part["qty_per_pi"], part["item"]
        assert float(part["unit_price_eur"]) > 0, part["item"]
        assert part["purpose"].strip(), part["item"]


def test_the_fuses_in_the_drawings_are_the_ones_in_the_parts_list():
    with open(HARDWARE / "parts.csv", encoding="utf-8", newline="") as f:
        items = [part["item"] for part in csv.DictReader(f)]
    assert any(draw.SUPPLY_FUSE in item and "fuse" in item for item in items)
    assert any(f"PTC) {draw.ROOM_PTC} hold" in item for item in items)


def test_no_machine_paths_in_the_hardware_files():
    pattern = re.compile(r"/(work|tmp|root|home)/[A-Za-z]")
    for path in sorted(HARDWARE.iterdir()):
        if path.is_file() and path.suffix in (".md", ".csv", ".svg", ".py"):
            assert not pattern.search(path.read_text(encoding="utf-8")), path.name


def test_the_script_checks_that_everything_is_up_to_date():
    result = subprocess.run([sys.executable, "-m", "hardware.draw", "--check"], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
