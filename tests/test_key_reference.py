"""docs/experiments-toml.md names every key the parser knows, table by table, and no other: the reference
cannot drift from the program."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from galaxy_tui.registry.parsing import KEYS_BY_TABLE, parse_registry

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "experiments-toml.md"


def documented() -> dict[str, list[str]]:
    tables: dict[str, list[str]] = {}
    current = None
    for line in REFERENCE.read_text().splitlines():
        heading = re.fullmatch(r"## `\[(.+)\]`", line)
        if heading:
            current = heading.group(1)
            tables[current] = []
        elif current and (row := re.match(r"\| `([a-z_0-9]+)` \|", line)):
            tables[current].append(row.group(1))
    return tables


def test_every_key_the_parser_knows_is_documented_and_no_other() -> None:
    docs = documented()
    assert set(docs) == set(KEYS_BY_TABLE)
    for table, keys in KEYS_BY_TABLE.items():
        assert sorted(docs[table]) == sorted(keys), table
        assert len(docs[table]) == len(set(docs[table])), f"{table}: a key documented twice"


def test_the_reference_s_example_parses_without_a_warning(tmp_path: Path) -> None:
    example = REFERENCE.read_text().split("```toml\n")[-1].split("```")[0]
    registry = parse_registry(tmp_path / "experiments.toml", tomllib.loads(example))
    assert registry.warnings == [] and registry.experiments["gz1-resnet18"].scheduler == "onecycle"
