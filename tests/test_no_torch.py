"""The UI process never imports torch: the CLI front, the app and everything they load stay torch-free."""

from __future__ import annotations

import subprocess
import sys


def test_cli_and_app_do_not_import_torch() -> None:
    code = ("import sys, importlib\n"
            "for m in ('galaxy_tui.cli', 'galaxy_tui.commands', 'galaxy_tui.app.main', 'galaxy_tui.runs'):\n"
            "    importlib.import_module(m)\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_help_answers_without_heavy_imports() -> None:
    code = ("import sys\nfrom galaxy_tui.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'pandas', 'textual') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
