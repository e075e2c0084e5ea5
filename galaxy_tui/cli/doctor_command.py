"""`galaxy-tui doctor [--quick] [--devices K] [--json FILE]`: the GPU truth on this box, as a table of checks (and
the JSON of every figure); the last report is kept in the workspace for the app's Doctor entry."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from galaxy_tui.doctor.report import LAST_REPORT, report_table


def doctor(workspace: Path, quick: bool, devices: int | None, json_file: Path | None) -> int:
    from galaxy_tui.doctor.run_checks import run_doctor  # torch loads here, after the arguments were read

    console, err = Console(), Console(stderr=True)
    with err.status("doctor: starting") as status:
        report = run_doctor(quick, devices, lambda name: status.update(f"doctor: {name}"))
    console.print(report_table(report.as_json()))
    written = []
    for target in ([json_file] if json_file else []) + [workspace / LAST_REPORT]:
        report.save(target)
        written.append(str(target))
    failed = report.failed
    console.print(("[bold red]" + f"{len(failed)} check(s) failed: " + ", ".join(c.name for c in failed) + "[/]")
                  if failed else "[bold green]no check failed[/]")
    console.print("report: " + "; ".join(written))
    return 1 if failed else 0
