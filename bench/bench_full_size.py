"""GZ2 at full size, measured on a synthetic GZ2: a Hart16-shaped catalogue of 240,000 rows, its file-name mapping
and 240,000 small JPEGs (64 px cut-outs of the 120 real SDSS galaxies, each turned or mirrored at random; about
2 KB each, 0.5 GB), written once into --data and reused by later runs. Through the CLI and the library as a user
would, printed side by side with the plain way where there is one:

1. the catalogue loaded (`galaxy-tui datasets`): seconds, and the memory it takes;
2. the prepared-image cache: its disk need (said before it is built), its build rate in images/s with the worker's
   threads, against a plain loop decoding and resizing one JPEG after another;
3. the worker's memory while the labels, the split, an epoch (`--steps` optimizer steps of tiny-cnn at 64 px) and
   its evaluation run (a background run sampled every 0.2 s): peak RSS, and its anonymous part (RSS less the
   file-backed pages: the memory-mapped cache, which the kernel can drop and read again, and the libraries);
4. `galaxy-tui predict RUN --dataset NAME --all`: galaxies/s and peak RSS while it streams 240,000 galaxies into
   its CSV, stopped (SIGINT) halfway and run again to continue.

    python bench/bench_full_size.py                      # about 25 minutes on 2 cores the first time
    python bench/bench_full_size.py --galaxies 20000     # smaller
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import tomli_w
from bench_ui import app_argv, first_paint
from PIL import Image

from cli_workspace import REALDATA
from galaxy_tui.data.cache import cache_bytes, cache_key, prepare_images
from galaxy_tui.data.gz2 import HART16_ANSWERS
from galaxy_tui.data.images import read_image_file, resize_image
from galaxy_tui.data.sources import load_dataset
from galaxy_tui.registry import load_registry

SIZE = 64


def catalogue(count: int, seed: int = 0) -> pd.DataFrame:
    """Hart16's columns for `count` galaxies: a third each clearly smooth, disc-and-spiral and edge-on, votes noisy."""
    rng = np.random.default_rng(seed)
    kind = rng.integers(0, 3, count)
    smooth = np.where(kind == 0, rng.uniform(0.8, 1.0, count), rng.uniform(0.0, 0.15, count))
    artifact = rng.uniform(0.0, 0.05, count)
    disk = np.clip(1 - smooth - artifact, 0, 1)
    yes = np.where(kind == 2, rng.uniform(0.8, 1.0, count), rng.uniform(0.0, 0.2, count))
    spiral = np.where(kind == 1, rng.uniform(0.8, 1.0, count), rng.uniform(0.0, 0.3, count))
    values = {"smooth": smooth, "disk": disk, "artifact": artifact, "edgeon_yes": yes, "edgeon_no": 1 - yes,
              "spiral": spiral}
    total = rng.integers(20, 60, count)
    columns: dict[str, np.ndarray] = {"dr7objid": 587722981741363200 + np.arange(count),
                                      "total_classifications": total}
    for ours, theirs in HART16_ANSWERS.items():
        for family in ("fraction", "weighted_fraction", "debiased"):
            columns[f"{theirs}_{family}"] = np.round(values[ours], 4)
        columns[f"{theirs}_count"] = np.round(values[ours] * total).astype(int)
    return pd.DataFrame(columns)


def _write_images(task: tuple[Path, int, int, list[str]]) -> None:
    folder, start, stop, sources = task
    rng = np.random.default_rng(start)
    bases = [resize_image(read_image_file(Path(path)), SIZE) for path in sources]
    for asset in range(start, stop):
        image = np.rot90(bases[asset % len(bases)], int(rng.integers(0, 4)))
        if rng.random() < 0.5:
            image = image[:, ::-1]
        Image.fromarray(np.ascontiguousarray(image)).save(folder / f"{asset}.jpg", quality=90)


def generate(data: Path, count: int) -> None:
    """Write the catalogue, the mapping and the JPEGs once (a finished set is marked and reused)."""
    if (data / "DONE").exists():
        return
    images = data / "images"
    images.mkdir(parents=True, exist_ok=True)
    sources = sorted(str(path) for path in REALDATA.glob("*/*.jpeg"))
    if not sources:
        raise SystemExit(f"the real SDSS cut-outs are not beside this checkout ({REALDATA})")
    started = time.perf_counter()
    step = 10_000
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(_write_images, [(images, s, min(s + step, count), sources) for s in range(0, count, step)]))
    table = catalogue(count)
    table.to_csv(data / "gz2_hart16.csv", index=False)
    pd.DataFrame({"objid": table["dr7objid"], "sample": "original", "asset_id": np.arange(count)}).to_csv(
        data / "gz2_filename_mapping.csv", index=False)
    (data / "DONE").write_text(f"{count}\n")
    size = sum(path.stat().st_size for path in images.iterdir())
    print(f"generated {count} JPEGs ({size / 1e9:.2f} GB) and the tables in {time.perf_counter() - started:.0f} s")


def rss_now() -> float:
    return psutil.Process().memory_info().rss / 2**20


def peak_of(process: subprocess.Popen, *markers: str, every_s: float = 0.2) -> tuple[float, float]:
    """Peak RSS and peak anonymous memory (RSS less the file-backed pages: the memory-mapped cache, the libraries),
    in MiB, until `process` ends, of the processes whose command line holds every marker (the worker runs in a
    session of its own, not as the command's child)."""
    peak_rss = peak_anon = 0.0
    while process.poll() is None:
        rss = anon = 0
        for member in psutil.process_iter(["cmdline"]):
            try:
                line = " ".join(member.info["cmdline"] or [])
                if all(marker in line for marker in markers):
                    memory = member.memory_info()
                    rss, anon = rss + memory.rss, anon + memory.rss - memory.shared
            except psutil.Error:
                continue
        peak_rss, peak_anon = max(peak_rss, rss / 2**20), max(peak_anon, anon / 2**20)
        time.sleep(every_s)
    return peak_rss, peak_anon


def cli(root: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(root), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--galaxies", type=int, default=240_000)
    parser.add_argument("--data", type=Path, default=Path.home() / ".cache" / "galaxy-tui-bench")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--cut-after", type=float, default=60.0, help="seconds before predict is interrupted")
    args = parser.parse_args()
    data = args.data / f"gz2-{args.galaxies}"
    generate(data, args.galaxies)
    root = data / "workspace"
    root.mkdir(exist_ok=True)
    raw = {"workspace": {"runs_dir": "runs", "cache_dir": "cache"},
           "datasets": {"big": {"kind": "gz2-hart16", "catalog": str(data / "gz2_hart16.csv"),
                                "mapping": str(data / "gz2_filename_mapping.csv"), "images": str(data / "images")}},
           "experiments": {"big": {"dataset": "big", "model": "tiny-cnn", "image_size": SIZE, "epochs": 1,
                                   "max_steps_per_epoch": args.steps, "micro_batch": 64, "effective_batch": 64,
                                   "labels": {"threshold": 0.8}, "mistakes": 0}}}
    (root / "experiments.toml").write_text(tomli_w.dumps(raw))
    registry = load_registry(root / "experiments.toml")
    print(f"{args.galaxies} galaxies, {SIZE} px JPEGs; {os.cpu_count()} cores")

    before, started = rss_now(), time.perf_counter()
    dataset = load_dataset(registry.dataset("big"), registry.cache_dir)
    first = time.perf_counter() - started
    started = time.perf_counter()
    dataset = load_dataset(registry.dataset("big"), registry.cache_dir)
    again = time.perf_counter() - started
    print(f"1. catalogue: {len(dataset.frame)} rows loaded in {first:.2f} s (first), {again:.2f} s (parsed-column "
          f"cache); memory +{rss_now() - before:.0f} MiB")

    ui_rss: list[float] = []

    def sample_ui(pid: int) -> None:  # the app as it settles: the samples' thumbnails are read after the counts
        for _ in range(15):
            ui_rss.append(psutil.Process(pid).memory_info().rss / 2**20)
            time.sleep(0.2)
    painted = first_paint(app_argv(), root, b"total", sample_ui)
    print(f"   the workbench on it: the counts on screen after {painted:.1f} s, RSS {max(ui_rss):,.0f} MiB")

    refs = list(dataset.frame["ref"])
    need = cache_bytes(len(refs), SIZE)
    sample = refs[:3000]
    started = time.perf_counter()
    for ref in sample:
        resize_image(dataset.read_image(ref), SIZE)
    plain = len(sample) / (time.perf_counter() - started)
    cache_root = registry.cache_dir
    fresh = not (cache_root / cache_key(dataset, refs, SIZE, 1.0) / "meta.json").exists()
    started = time.perf_counter()
    prepared = prepare_images(dataset, refs, SIZE, cache_root)
    built = time.perf_counter() - started
    print(f"2. cache: needs {need / 1e9:.2f} GB (said before the build); built at {len(refs) / built:,.0f} images/s "
          f"({built:.0f} s, {prepared.unreadable} unreadable) against {plain:,.0f} images/s one after another: "
          f"{len(refs) / built / plain:.1f}x" if fresh else f"2. cache: already built in {cache_root} (delete it to "
                                                            f"measure the build)")

    train = cli(root, "train", "big", *(["--restart"] if (root / "runs").exists() else []))
    peak_rss, peak_anon = peak_of(train, "galaxy_tui.train.worker", str(root))
    out, err = train.communicate()
    run = sorted((root / "runs").glob("big-*"))[-1].name
    print(f"3. worker, {args.steps} steps of an epoch over {len(refs)} galaxies and its evaluation: peak RSS "
          f"{peak_rss:,.0f} MiB, of which its own (anonymous) {peak_anon:,.0f} MiB; run {run} "
          f"{'finished' if train.returncode == 0 else err[-300:]}")

    target = data / "predictions.csv"
    for stale in data.glob("predictions.csv*"):
        stale.unlink()
    predict = cli(root, "predict", run, "--dataset", "big", "--all", "--out", str(target))
    started = time.perf_counter()
    time.sleep(args.cut_after)
    predict.send_signal(signal.SIGINT)
    predict.communicate()
    cut = time.perf_counter() - started
    predict = cli(root, "predict", run, "--dataset", "big", "--all", "--out", str(target))
    started = time.perf_counter()
    peak_rss, peak_anon = peak_of(predict, "galaxy_tui.cli", "predict", str(root))
    out, err = predict.communicate()
    rows = len(pd.read_csv(target)) if target.exists() else 0
    print(f"4. predict --all: stopped after {cut:.0f} s, continued: {rows} rows in the CSV "
          f"({time.perf_counter() - started:.0f} s more); peak RSS {peak_rss:,.0f} MiB (anonymous {peak_anon:,.0f}); "
          + (out.strip().splitlines()[0] if out.strip() else err[-300:]))


if __name__ == "__main__":
    main()
