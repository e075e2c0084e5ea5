"""`galaxy-tui fetch NAME`: a public dataset's files downloaded with pooch (checked against the publisher's sha256,
or Zenodo's md5 for files it hosts), or through the Kaggle CLI for a Kaggle competition, from their source or a
mirror (a URL or a folder holding the same files), into a private folder renamed into place only once every file is
there and unpacked; then registered in experiments.toml (tomlkit: comments kept).

Before the first byte the total size is asked of the server (or the CLI's listing, or read from the mirror folder)
and held against the free disk. A file that finished stays in the private folder, so a fetch interrupted between
files starts again at the first missing one; a checksum mismatch removes the bad file and says so. SOURCE.json in
the dataset's folder says where each file came from, its published checksum, whether it was checked, and its own
sha256."""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pooch
import requests

from galaxy_tui.atomic import atomic_write_json, read_json
from galaxy_tui.errors import GalaxyError
from galaxy_tui.fetching.kaggle_cli import kaggle_download, kaggle_sizes
from galaxy_tui.fetching.resuming import Progress, ResumingDownloader
from galaxy_tui.fetching.sources import SOURCES, Source, SourceFile
from galaxy_tui.fetching.zenodo import zenodo_checksums
from galaxy_tui.registry import REGISTRY_FILE, ensure_registry, update_registry

HEAD_TIMEOUT_S = 20
PATH_KEYS = ("path", "train", "test", "catalog", "mapping", "images", "solutions")  # keys naming files


@dataclass(frozen=True)
class Fetched:
    folder: Path
    dataset: str
    registered: bool  # False: the workspace already had a dataset of that name
    sha256: dict[str, str]


def source(name: str) -> Source:
    if name in SOURCES:
        return SOURCES[name]
    raise GalaxyError(f"no dataset named {name!r} to fetch; these can be: {', '.join(SOURCES)}")


def _where(chosen: Source, file: SourceFile, mirror: str | None) -> str:
    """The file's URL, or its path in a mirror folder, or its URL under a mirror URL, or kaggle:COMPETITION/NAME."""
    if mirror is None:
        return f"kaggle:{chosen.kaggle}/{file.name}" if chosen.kaggle else file.url
    if urlparse(mirror).scheme in ("http", "https", "ftp"):
        return mirror.rstrip("/") + "/" + file.name
    return str(Path(mirror).expanduser() / file.name)


def _sizes(chosen: Source, wheres: list[tuple[SourceFile, str]]) -> list[tuple[SourceFile, int | None]]:
    """Each file's bytes before any is fetched (None: the source does not say)."""
    if any(where.startswith("kaggle:") for _, where in wheres):
        listed = kaggle_sizes(chosen.kaggle, [file.name for file, _ in wheres])
        return [(file, listed[file.name]) for file, _ in wheres]
    return [(file, _size(where)) for file, where in wheres]


def _size(where: str) -> int | None:
    """Bytes of one file before it is fetched: its Content-Length, or its size in the mirror folder."""
    if urlparse(where).scheme not in ("http", "https", "ftp"):
        path = Path(where)
        if not path.is_file():
            raise GalaxyError(f"the mirror has no {path.name} ({path}); copy the files there first")
        return path.stat().st_size
    try:
        answer = requests.head(where, allow_redirects=True, timeout=HEAD_TIMEOUT_S)
    except requests.RequestException as exc:
        host = urlparse(where).netloc
        raise GalaxyError(f"cannot reach {host} ({type(exc).__name__}): offline? Copy the files onto this box and "
                          f"fetch with --mirror DIR, or from a mirror URL") from None
    if answer.status_code >= 400:
        raise GalaxyError(f"{where} answered {answer.status_code} {answer.reason}; the source may have moved "
                          f"(--mirror takes another)")
    length = answer.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def check_disk(folder: Path, files: list[tuple[SourceFile, int | None]]) -> int:
    """The bytes the fetch needs; GalaxyError saying how much is missing where it will not fit."""
    # Files are fetched and unpacked one after another, each download removed once unpacked: what stays, plus the
    # largest download beside its unpacked copy.
    need = sum((size or 0) * file.unpacked_factor for file, size in files) + \
        max([size or 0 for file, size in files if file.packed], default=0)
    existing = next(parent for parent in (folder, *folder.parents) if parent.exists())
    free = shutil.disk_usage(existing).free
    if need > free:
        raise GalaxyError(f"{folder} has {free / 1e9:.2f} GB free and the fetch needs {need / 1e9:.2f} GB "
                          f"(downloads and unpacked copies): {(need - free) / 1e9:.2f} GB are missing; free some or "
                          f"fetch with --to another disk")
    return need


def _bad_checksum(file: SourceFile, known: str, detail: str) -> GalaxyError:
    return GalaxyError(f"{file.name} does not match its published checksum ({known.replace(':', ' ')}); the bad "
                       f"download was removed. Fetch again; from a mirror, check its copy. ({detail})")


def published_checksums(chosen: Source, mirror: str | None) -> dict[str, str | None]:
    """Each file's published checksum as pooch reads it ("sha256:..." from the table, or Zenodo's "md5:...",
    asked of its API when fetching from the source); None: none published."""
    asked = zenodo_checksums([file.url for file in chosen.files if not file.sha256],
                             HEAD_TIMEOUT_S) if mirror is None else {}
    return {file.name: f"sha256:{file.sha256}" if file.sha256 else asked.get(file.url) for file in chosen.files}


def _get(file: SourceFile, where: str, size: int | None, known: str | None, partial: Path,
         progress: Progress) -> Path:
    """One file into the private folder, checked; a file already there and whole is kept."""
    target = partial / file.name
    if where.startswith("kaggle:"):
        return kaggle_download(where.removeprefix("kaggle:").split("/")[0], file.name, partial, size, progress)
    if urlparse(where).scheme not in ("http", "https", "ftp"):
        if not target.exists():
            shutil.copyfile(where, partial / f".{file.name}.copying")
            (partial / f".{file.name}.copying").rename(target)
        if known:
            algorithm, digest = known.split(":", 1)
            if pooch.file_hash(str(target), alg=algorithm) != digest:
                target.unlink()
                raise _bad_checksum(file, known, f"from {where}")
        return target
    downloader = ResumingDownloader(partial / f"{file.name}.part", progress, HEAD_TIMEOUT_S)
    try:
        return Path(pooch.retrieve(where, known_hash=known, fname=file.name, path=partial, downloader=downloader))
    except ValueError as exc:  # pooch's hash mismatch; it removed the download
        raise _bad_checksum(file, known or "", str(exc).splitlines()[0][:160]) from None
    except requests.RequestException as exc:
        raise GalaxyError(f"the download of {file.name} from {urlparse(where).netloc} broke off "
                          f"({type(exc).__name__}); fetch again: it goes on from where it stopped") from None


def _unzip_images(file: SourceFile, path: Path) -> Path:
    """The zip's images into one folder (its inner folders flattened; macOS's `._` shadows and __MACOSX left out),
    unpacked into a hidden folder first and then moved in, so a cut-off unzip leaves no half folder; several zips may
    fill one folder (GZ DECaLS's four parts), each marked done once it is all there."""
    folder = path.with_name(file.unzip_to)
    with zipfile.ZipFile(path) as archive:
        members = [name for name in archive.namelist() if not name.endswith("/") and "__MACOSX" not in name
                   and not Path(name).name.startswith("._")]
    staging = path.with_name(f".{file.name}.unpacking")
    shutil.rmtree(staging, ignore_errors=True)
    unzipped = pooch.Unzip(members=members, extract_dir=str(staging))(str(path), "download", None)
    for extracted in map(Path, unzipped):
        if extracted.parent != staging:
            extracted.rename(staging / extracted.name)
    for inner in sorted((p for p in staging.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        inner.rmdir()
    if folder.exists():
        for image in staging.iterdir():
            image.rename(folder / image.name)
        staging.rmdir()
    else:
        staging.rename(folder)
    _done_marker(file, path.parent).touch()
    path.unlink()
    return folder


def _done_marker(file: SourceFile, partial: Path) -> Path:
    return partial / f".{file.name}.unpacked"


def _unpacked(file: SourceFile, partial: Path) -> bool:
    return _done_marker(file, partial).exists() if file.unzip_to else (partial / file.unpacked).exists()


def _extract(file: SourceFile, path: Path) -> Path:
    """The one file the dataset reads out of a zip (wherever it sits inside), through a hidden name."""
    with zipfile.ZipFile(path) as archive:
        inside = [name for name in archive.namelist() if Path(name).name == file.extract and "__MACOSX" not in name]
        if not inside:
            raise GalaxyError(f"{path.name} holds no {file.extract}; the download is not the published file. "
                              f"Remove {path} and fetch again.")
        staging = path.with_name(f".{file.extract}.unpacking")
        with archive.open(inside[0]) as member, open(staging, "wb") as out:
            shutil.copyfileobj(member, out, 1 << 20)
    staging.rename(path.with_name(file.extract))
    path.unlink()
    return path.with_name(file.extract)


def _unpack(file: SourceFile, path: Path) -> Path:
    if file.unzip_to:
        return _unzip_images(file, path)
    if file.extract:
        return _extract(file, path)
    if not file.gunzip:
        return path
    unpacked = path.with_name(file.unpacked)
    if not unpacked.exists():
        pooch.Decompress(method="gzip", name=f".{file.unpacked}.unpacking")(str(path), "download", None)
        path.with_name(f".{file.unpacked}.unpacking").rename(unpacked)
    path.unlink()
    return unpacked


@contextmanager
def _pooch_quiet() -> Iterator[None]:
    """pooch logs each download and each member it unzips (240,000 lines for GZ2); the progress says enough."""
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel("WARNING")
    try:
        yield
    finally:
        logger.setLevel(level)


def fetch(workspace: Path, name: str, to: Path | None, mirror: str | None, progress: Progress) -> Fetched:
    with _pooch_quiet():
        return _fetch(workspace, source(name), to, mirror, progress)


def _fetch(workspace: Path, chosen: Source, to: Path | None, mirror: str | None, progress: Progress) -> Fetched:
    name = chosen.name
    parent = (to or workspace / "data").expanduser()
    parent = parent if parent.is_absolute() else workspace / parent
    folder, partial = parent / name, parent / f".{name}.partial"
    if not folder.exists():
        wheres = [(file, _where(chosen, file, mirror)) for file in chosen.files]
        sizes = _sizes(chosen, wheres)  # nothing is written before this answers
        check_disk(parent, sizes)
        published = published_checksums(chosen, mirror)
        partial.mkdir(parents=True, exist_ok=True)
        for (file, where), (_, size) in zip(wheres, sizes):
            if not _unpacked(file, partial):
                _unpack(file, _get(file, where, size, published[file.name], partial, progress))
        atomic_write_json(partial / "SOURCE.json", _provenance(chosen, partial, mirror, published))
        for marker in partial.glob(".*.unpacked"):
            marker.unlink()
        partial.rename(folder)  # the dataset appears whole or not at all
    recorded = _recorded_sha256(folder)
    sha256 = {file.unpacked: recorded.get(file.name) or fingerprint(folder / file.unpacked) for file in chosen.files}
    ensure_registry(workspace)
    return Fetched(folder, name, _register(workspace / REGISTRY_FILE, chosen, folder, workspace), sha256)


def _provenance(chosen: Source, partial: Path, mirror: str | None,
                published: dict[str, str | None]) -> dict[str, Any]:
    own = {unpacked: fingerprint(partial / unpacked) for unpacked in {file.unpacked for file in chosen.files}}
    return {"dataset": chosen.name, "from": mirror or "source",
            "files": {file.name: {"url": file.url, "published_checksum": published[file.name],
                                  "checked": published[file.name] is not None, "unpacked": file.unpacked,
                                  "sha256": own[file.unpacked]}
                      for file in chosen.files}}


def _recorded_sha256(folder: Path) -> dict[str, str]:
    """Each file's sha256 as SOURCE.json has it, by file name (hashing a 2.7 GB file again takes seconds)."""
    files = (read_json(folder / "SOURCE.json") or {}).get("files")
    return {name: str(entry["sha256"]) for name, entry in files.items()
            if isinstance(entry, dict) and entry.get("sha256")} if isinstance(files, dict) else {}


def fingerprint(path: Path) -> str:
    """A file's sha256, or what a folder of images holds."""
    if path.is_dir():
        return f"{sum(1 for _ in path.iterdir())} files"
    return pooch.file_hash(str(path))


def _register(path: Path, chosen: Source, folder: Path, workspace: Path) -> bool:
    """Add [datasets.NAME] pointing into the fetched folder (relative to the workspace where it lies inside)."""
    added: list[bool] = []
    where = folder.relative_to(workspace) if folder.is_relative_to(workspace) else folder

    def mutate(document: dict[str, Any]) -> None:
        datasets = document.setdefault("datasets", {})
        added.append(chosen.name not in datasets)
        if added[-1]:
            datasets[chosen.name] = {key: str(where / value) if key in PATH_KEYS else value
                                     for key, value in chosen.dataset.items()}

    update_registry(path, mutate)
    return added[-1]
