"""Classify images with the run shown in Results: a path typed (Tab completes), a predict job started in
the background (its own process: the UI never loads the model), its progress, then each galaxy large with
its top classes. The job and its CSV stay in the run's folder; the dialog opens on the latest one."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import DataTable, Input, Label, Static

from galaxy_tui.analysis.domain import UNLIKE
from galaxy_tui.app.curation_view import similar_in_run
from galaxy_tui.app.gallery import BLANK, Galaxy, GalaxyView
from galaxy_tui.app.path_input import PathInput
from galaxy_tui.app.thumbs import eye_crop, readable_class
from galaxy_tui.app.whole_table import Row, WholeTable
from galaxy_tui.data.images import ImageUnreadable, read_image_file
from galaxy_tui.data.thumbnails import thumbnail
from galaxy_tui.errors import GalaxyError
from galaxy_tui.inference.predict_jobs import PredictJob, latest_job, read_job, start_predict_job, stop_job

TOP = 3          # classes named in a caption
ANSWERS_SHOWN = 6


def _share(row: dict[str, str], column: str) -> float:
    try:
        return float(row[column])
    except (KeyError, ValueError):
        return float("nan")


def ranked(row: dict[str, str]) -> list[tuple[str, float]]:
    """The row's classes (p_*) or answers (pred_*), largest first."""
    prefix = "p_" if any(column.startswith("p_") for column in row) else "pred_"
    pairs = [(column.removeprefix(prefix), _share(row, column)) for column in row if column.startswith(prefix)]
    return sorted(pairs, key=lambda pair: -pair[1])


def prediction_caption(row: dict[str, str]) -> str:
    name = Path(row.get("path", "")).name or row.get("id", "")
    if "predicted" not in row:
        answers = "  ".join(f"{answer} {value:.2f}" for answer, value in ranked(row)[:ANSWERS_SHOWN])
        return f"{name}\nlargest predicted vote fractions: {answers}{_caution(row)}"
    calibrated = _share(row, "calibrated_confidence")
    line = f"predicted {readable_class(row['predicted'])}  {_share(row, 'confidence'):.1%}"
    if calibrated == calibrated:  # not NaN: the run fitted a temperature and the galaxy is like its training ones
        line += f"  (calibrated {calibrated:.1%})"
    top = "  ".join(f"{readable_class(name)} {value:.2f}" for name, value in ranked(row)[:TOP])
    return f"{name}\n{line}\ntop classes: {top}{_caution(row)}"


def unlike_training(row: dict[str, str]) -> bool:
    return row.get("unlike_training") == "True"


def _caution(row: dict[str, str]) -> str:
    if not unlike_training(row):
        return ""
    return (f"\n{UNLIKE.capitalize()} (in-domain {_share(row, 'in_domain'):.2f}): the model has not seen galaxies "
            f"like this one, so its confidence means little")


def _picture(path: Path, crop: float) -> PILImage.Image:
    try:
        return thumbnail(read_image_file(path), 256, crop)
    except ImageUnreadable:
        return BLANK


class PredictDialog(ModalScreen[None]):
    AUTO_FOCUS = "#predict-path"
    BINDINGS = [Binding("escape", "dismiss(None)", "Close"), Binding("ctrl+s", "stop_job", "Stop the job")]

    def __init__(self, run_id: str, run_dir: Path, dataset_kind: str, workspace: Path):
        super().__init__(id="predict-dialog")
        self.run_id, self.run_dir, self.workspace = run_id, run_dir, workspace
        self.crop = eye_crop(dataset_kind)
        self.job: PredictJob | None = None
        self.rows: list[dict[str, str]] = []
        self._poll: Timer | None = None
        self.open_when_done = False

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog wide", id="predict-box"):
            yield Label(f"Classify images with {self.run_id}", classes="question")
            yield Static("An image file or a folder (recursive); Tab completes", classes="hint")
            yield PathInput(self.workspace, placeholder="path/to/galaxies", id="predict-path")
            yield Static("", id="predict-status")
            yield WholeTable(id="predict-table", cursor_type="row", zebra_stripes=True)
            yield Static("Enter opens large · Ctrl+S stops · Esc closes (the job goes on)", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#predict-table", DataTable).display = False
        job = latest_job(self.run_dir)
        if job is not None:
            self.query_one("#predict-path", PathInput).value = job.paths[0] if job.paths else ""
            self._follow(job, open_when_done=False)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        typed = event.value.strip()
        if not typed:
            self._say("type an image file or a folder first", error=True)
            return
        if self.job is not None and self.job.live:
            self._say("the last job is still running; wait for it to finish", error=True)
            return
        path = Path(typed).expanduser()
        path = path if path.is_absolute() else self.workspace / path
        if not path.exists():
            self._say(f"no such file or folder: {path}", error=True)
            return
        try:
            registry = self.app.registry  # type: ignore[attr-defined]
            folder = start_predict_job(self.run_dir, [path], self.workspace,
                                       registry.executor if registry else "local",
                                       registry.slurm if registry else None)
        except GalaxyError as exc:
            self._say(str(exc), error=True)
            return
        self._follow(read_job(folder), open_when_done=True)

    def action_stop_job(self) -> None:
        if self.job is None or not self.job.live:
            self._say("no job is running", error=True)
            return
        try:
            stop_job(self.job.folder)
        except GalaxyError as exc:
            self._say(str(exc), error=True)
            return
        self._say("stopping the job at its next batch…")

    def _follow(self, job: PredictJob, open_when_done: bool) -> None:
        self.job, self.open_when_done = job, open_when_done
        self._show_job()
        if job.live and self._poll is None:
            self._poll = self.set_interval(0.25, self._refresh_job)

    def _refresh_job(self) -> None:
        if self.job is None:
            return
        self.job = read_job(self.job.folder)
        self._show_job()

    def _show_job(self) -> None:
        job = self.job
        assert job is not None
        if job.live:
            progress = f"{job.done} of {job.total}" if job.total else "starting the worker…"
            self._say(f"classifying: {progress} {('· ' + job.message) if job.message else ''}")
            return
        if self._poll is not None:
            self._poll.stop()
            self._poll = None
        if job.state != "finished":
            self._say(f"the job is {job.state}: {job.message}", error=job.state != "stopped")
            return
        self._say(f"{job.message}; CSV in the run's predictions/{job.folder.name}/")
        self._fill(job.predictions)
        if self.open_when_done and self.rows:
            self.open_when_done = False
            self._open(0)

    def _say(self, message: str, error: bool = False) -> None:
        self.query_one("#predict-status", Static).update(Text(message, style="red" if error else ""))

    def _fill(self, predictions: Path) -> None:
        try:
            with predictions.open(newline="") as handle:
                self.rows = list(csv.DictReader(handle))
        except OSError as exc:
            self._say(f"cannot read {predictions}: {exc.strerror}", error=True)
            return
        table = self.query_one("#predict-table", WholeTable)
        table.set_columns(["file", "predicted", "p", "like training", "next"],
                          ["file", "predicted", "p", "like", "next"], squeeze=("file",))
        rows = []
        for index, row in enumerate(self.rows):
            top = ranked(row)
            first, second = top[0] if top else ("", 0.0), top[1] if len(top) > 1 else ("", 0.0)
            rows.append(Row(str(index), [
                Path(row.get("path", "")).name, readable_class(first[0]), f"{first[1]:.2f}",
                Text("no", style="bold yellow") if unlike_training(row) else "yes" if "unlike_training" in row
                else "?", f"{readable_class(second[0])} {second[1]:.2f}" if second[0] else ""]))
        table.set_rows(rows)
        table.display = bool(self.rows)
        if self.rows:
            table.focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self._open(event.cursor_row)

    def _open(self, index: int) -> None:
        galaxies = [Galaxy(lambda path=Path(row.get("path", "")): _picture(path, self.crop), prediction_caption(row),
                           str(position)) for position, row in enumerate(self.rows)]
        self.app.push_screen(GalaxyView(galaxies, index, self._similar))

    def _similar(self, position: str) -> None:
        """`s` on a classified image: the run's galaxies most like it, from the features the job kept."""
        features = self.job.predictions.with_suffix(".features.npy") if self.job else None
        if features is None or not features.exists():
            self.app.notify("this job kept no features (it ran before they were kept): classify again",
                            severity="warning")
            return
        row = self.rows[int(position)]
        similar_in_run(self.app, self.run_dir, Path(row.get("path", "")).name,
                       np.load(features, mmap_mode="r")[int(position)])
