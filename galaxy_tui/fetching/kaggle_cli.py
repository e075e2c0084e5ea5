"""Files of a Kaggle competition through the Kaggle CLI (`pip install kaggle`), run as a subprocess: the kaggle
package authenticates (and may exit) when imported, and its CLI is what a user already knows. The CLI needs a
token; where none is found, the message says how to get one, or which files to download by hand and where to put
them. The CLI resumes a broken-off download itself; its bytes are counted here from the growing file."""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
import sysconfig
import tempfile
from pathlib import Path

from galaxy_tui.errors import GalaxyError
from galaxy_tui.fetching.resuming import Progress

LIST_TIMEOUT_S = 60
POLL_S = 0.5
TOKEN_URL = "https://www.kaggle.com/settings/api"
_UNITS = {"B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}


def kaggle_token() -> str | None:
    """Where the Kaggle CLI would find its credentials (the places kaggle 1.x and 2.x read), or None."""
    if os.environ.get("KAGGLE_API_TOKEN"):
        return "KAGGLE_API_TOKEN"
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return "KAGGLE_USERNAME and KAGGLE_KEY"
    home = Path.home()
    folders = [Path(os.environ["KAGGLE_CONFIG_DIR"])] if os.environ.get("KAGGLE_CONFIG_DIR") else []
    folders += [home / ".kaggle", Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config") / "kaggle"]
    for folder in folders:
        for name in ("access_token", "access_token.txt", "kaggle.json", "credentials.json"):
            if (folder / name).is_file() and (folder / name).stat().st_size:
                return str(folder / name)
    return None


def scripts_folder() -> str:
    """Where this Python's installed commands are: `pip install kaggle` puts the CLI there, also where that folder is
    not on PATH (a virtual environment used without activating it, a pyenv shim not yet rehashed)."""
    return sysconfig.get_path("scripts")


def by_hand(competition: str, files: list[str]) -> str:
    return (f"download {' and '.join(files)} from https://www.kaggle.com/competitions/{competition}/data (after "
            f"accepting the competition's rules there) into one folder, then fetch with --mirror FOLDER")


def kaggle_cli(competition: str, files: list[str]) -> str:
    """The Kaggle CLI's path; GalaxyError saying what to do where it or a token is missing."""
    executable = shutil.which("kaggle") or shutil.which("kaggle", path=scripts_folder())
    if executable is None:
        raise GalaxyError(f"this dataset comes from Kaggle, through the Kaggle CLI, which is not installed: "
                          f"`pip install kaggle`, put a token from {TOKEN_URL} in ~/.kaggle/access_token, and fetch "
                          f"again; or {by_hand(competition, files)}.")
    if kaggle_token() is None:
        raise GalaxyError(f"the Kaggle CLI found no token: create one at {TOKEN_URL} (\"Generate New Token\") and "
                          f"save it in ~/.kaggle/access_token (or set KAGGLE_API_TOKEN), then fetch again; or "
                          f"{by_hand(competition, files)}.")
    return executable


def _failure(competition: str, output: str) -> GalaxyError:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    last = lines[-1][:200] if lines else "no output"
    hint = (f"accept the competition's rules at https://www.kaggle.com/competitions/{competition}/rules with the "
            f"account of your token, then fetch again" if "403" in output else
            f"your token was refused: make a new one at {TOKEN_URL}" if "401" in output else
            "offline? Copy the files onto this box and fetch with --mirror DIR" if re.search(
                r"(?i)connection|resolve|timed? ?out|unreachable", output) else "fetch again")
    return GalaxyError(f"the Kaggle CLI could not get {competition}'s files ({last}): {hint}.")


def _listing(arguments: list[str], competition: str) -> str:
    try:
        done = subprocess.run(arguments, capture_output=True, text=True, timeout=LIST_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise GalaxyError(f"the Kaggle CLI did not answer in {LIST_TIMEOUT_S} s: offline? Copy the files onto this "
                          f"box and fetch with --mirror DIR.") from None
    if done.returncode != 0:
        raise _failure(competition, done.stdout + "\n" + done.stderr)
    return done.stdout


def _bytes(size: str) -> int | None:
    """A size as the CLI prints it: bytes (kaggle 2.x's CSV), or 1.36GB / 512 MB (1.x)."""
    size = size.strip()
    if size.isdigit():
        return int(size)
    found = re.fullmatch(r"([\d.]+)\s*([KMGT]?B)", size, re.IGNORECASE)
    return round(float(found[1]) * _UNITS[found[2].upper()]) if found else None


def kaggle_sizes(competition: str, files: list[str]) -> dict[str, int | None]:
    """The competition's files and their sizes, as `kaggle competitions files` lists them (None: not given)."""
    listing = _listing([kaggle_cli(competition, files), "competitions", "files", "-c", competition, "-v",
                        "--page-size", "200"], competition)
    rows = csv.DictReader(io.StringIO(listing[listing.find("name,"):] if "name," in listing else ""))
    sizes = {row["name"]: _bytes(row.get("size") or row.get("totalBytes") or "") for row in rows if row.get("name")}
    missing = [name for name in files if name not in sizes]
    if missing:
        raise GalaxyError(f"Kaggle's listing of {competition} has no {', '.join(missing)}; the competition's files "
                          f"may have changed: {by_hand(competition, files)}.")
    return {name: sizes[name] for name in files}


def kaggle_download(competition: str, name: str, folder: Path, total: int | None, progress: Progress) -> Path:
    """One file of the competition into `folder`, the CLI's progress counted from the file as it grows. A stop
    (the progress raising) or Ctrl-C ends the CLI too; what it wrote stays for the next fetch to go on from."""
    arguments = [kaggle_cli(competition, [name]), "competitions", "download", "-c", competition, "-f", name,
                 "-p", str(folder), "-q"]
    target = folder / name
    with tempfile.TemporaryFile("w+") as said:
        process = subprocess.Popen(arguments, stdout=said, stderr=subprocess.STDOUT, text=True)
        try:
            while True:
                try:
                    process.wait(timeout=POLL_S)
                    break
                except subprocess.TimeoutExpired:
                    if target.exists():
                        progress(name, target.stat().st_size, total)
        except BaseException:
            process.terminate()
            process.wait()
            raise
        said.seek(0)
        if process.returncode != 0:
            raise _failure(competition, said.read())
    if not target.is_file():
        raise GalaxyError(f"the Kaggle CLI ended without writing {name} in {folder}; {by_hand(competition, [name])}.")
    progress(name, target.stat().st_size, total)
    return target
