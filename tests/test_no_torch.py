"""The UI process never imports torch: the CLI front, the headless commands that only read or launch, the app,
every pane (also those app.main loads after the first paint) and every dialog stay torch-free."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import galaxy_tui.app

TORCH_FREE = ("galaxy_tui.cli", "galaxy_tui.cli.run_commands", "galaxy_tui.cli.result_commands",
              "galaxy_tui.cli.datasets_command", "galaxy_tui.runs", "galaxy_tui.frozen_run",
              "galaxy_tui.executors.local", "galaxy_tui.executors.slurm", "galaxy_tui.supervisor",
              "galaxy_tui.watch", "galaxy_tui.report")


def app_modules() -> list[str]:
    """Every module of the app package: panes, dialogs, widgets."""
    root = Path(galaxy_tui.app.__file__).parent
    return [f"galaxy_tui.app.{info.name}" for info in pkgutil.walk_packages([str(root)]) if not info.ispkg] + \
        [f"galaxy_tui.app.panes.{info.name}" for info in pkgutil.iter_modules([str(root / "panes")])]


def test_cli_app_panes_and_dialogs_do_not_import_torch() -> None:
    modules = [*TORCH_FREE, *app_modules()]
    assert "galaxy_tui.app.panes.results" in modules and "galaxy_tui.app.predict_dialog" in modules
    code = ("import sys, importlib\n"
            f"for m in {modules!r}:\n"
            "    importlib.import_module(m)\n"
            "    assert 'torch' not in sys.modules, m\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr[-2000:]


def test_help_answers_without_heavy_imports() -> None:
    code = ("import sys\nfrom galaxy_tui.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'pandas', 'textual') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
