"""`galaxy-tui doctor`'s report: one entry per check (PASS, FAIL or SKIP, why, and every figure it measured), as a
Rich table for the terminal and as JSON for a bug report. Torch-free: the app shows the last report."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from galaxy_tui.atomic import atomic_write_json, read_json

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
NEEDS_GPU = "needs a CUDA GPU"
LAST_REPORT = Path("doctor") / "last.json"  # under the workspace
SCHEMA_VERSION = 1
STYLES = {PASS: "bold green", FAIL: "bold red", SKIP: "yellow"}

REPORT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["schema", "galaxy_tui", "started", "seconds", "quick", "checks"],
    "properties": {
        "schema": {"const": SCHEMA_VERSION},
        "galaxy_tui": {"type": "string"},
        "started": {"type": "string"},
        "seconds": {"type": "number", "minimum": 0},
        "quick": {"type": "boolean"},
        "checks": {"type": "array", "minItems": 1, "items": {
            "type": "object",
            "required": ["name", "status", "summary", "figures", "seconds"],
            "properties": {
                "name": {"type": "string"},
                "status": {"enum": [PASS, FAIL, SKIP]},
                "summary": {"type": "string", "minLength": 1},
                "figures": {"type": "object"},
                "seconds": {"type": "number", "minimum": 0},
            },
            "additionalProperties": False,
        }},
    },
    "additionalProperties": False,
}


@dataclass
class Check:
    name: str
    status: str
    summary: str  # what it found, or why it failed or was skipped
    figures: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class Report:
    galaxy_tui: str
    started: str
    quick: bool
    checks: list[Check] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> list[Check]:
        return [check for check in self.checks if check.status == FAIL]

    def as_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA_VERSION, "galaxy_tui": self.galaxy_tui, "started": self.started,
                "seconds": round(self.seconds, 2), "quick": self.quick,
                "checks": [{**asdict(check), "seconds": round(check.seconds, 2)} for check in self.checks]}

    def save(self, path: Path) -> None:
        atomic_write_json(path, self.as_json())


def read_report(path: Path) -> dict[str, Any] | None:
    """A saved report as JSON, or None where there is none (or it cannot be read)."""
    report = read_json(path)
    return report if isinstance(report, dict) and isinstance(report.get("checks"), list) else None


def figures_text(figures: dict[str, Any]) -> str:
    def shown(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4g}"
        if isinstance(value, (list, dict)):
            return json.dumps(value, separators=(",", ":"))
        return str(value)
    return " · ".join(f"{key} {shown(value)}" for key, value in figures.items())


def report_table(report: dict[str, Any]) -> Table:
    """The checks as a table: status, check, and what it found with the figures under it (wrapped between figures,
    so a long value such as the platform keeps a line of its own rather than being cut)."""
    table = Table(title=f"galaxy-tui doctor · {report.get('galaxy_tui', '')} · {report.get('started', '')}"
                        f"{' · quick' if report.get('quick') else ''} · {report.get('seconds', 0):.0f} s",
                  show_lines=True, expand=True)
    table.add_column("", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("found, and the figures measured", overflow="fold")
    for check in report.get("checks", []):
        status = str(check.get("status", ""))
        found = Text(str(check.get("summary", "")))
        if check.get("figures"):
            found.append("\n" + figures_text(check["figures"]), style="dim")
        table.add_row(Text(status, style=STYLES.get(status, "")), str(check.get("name", "")), found)
    return table
