"""Curation in the workbench (`u` in Results): a curated run's lists as galleries of galaxies — likely wrong
labels, what to label next, the odd ones out, and the galaxies most like one (`s`). `x` excludes the galaxy under
the cursor from the runs that follow, `m` relabels it, `k` takes a decision back: each goes to the dataset's
overrides file (data/overrides), never to its catalogue."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from rich.text import Text
from textual.app import App
from textual.binding import Binding

from galaxy_tui.app.curation_map import MapScreen
from galaxy_tui.app.dialogs import ChoiceDialog, confirm
from galaxy_tui.app.fields import pack_fields
from galaxy_tui.app.gallery import CAPTION_COLUMNS, Galaxy, TileGallery, dataset_picture, vote_caption
from galaxy_tui.app.threads import deliver
from galaxy_tui.app.thumbs import readable_class
from galaxy_tui.curation.files import SUMMARY
from galaxy_tui.errors import GalaxyError
from galaxy_tui.registry import Registry
from galaxy_tui.runs import curate_run

if TYPE_CHECKING:
    from galaxy_tui.curation.session import CurationSession

SHOWN = 500  # the gallery shows the top of each list; `galaxy-tui curation RUN LIST --csv` writes all of it
TITLES = {"issues": "Likely wrong labels", "next": "Label these next", "odd": "The odd ones out"}
ORDER = ("issues", "next", "odd")
CLASS_KEYS = "1234567890abcdefhijlnoqrtuvwyz"  # a key per class in the relabel dialog (none a dialog's own)


def _number(value: object, digits: int = 2) -> str:
    try:
        return f"{float(value):.{digits}f}"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "—"


def tile_caption(kind: str, row: pd.Series, fractions: bool) -> str:
    """One short line under a tile: what puts the galaxy on this list."""
    if kind == "issues" and fractions:
        return f"{row['answer']} {_number(row['volunteers'])} vs {_number(row['model'])}"
    if kind == "issues":
        return f"{readable_class(str(row['given']))} → {readable_class(str(row['suggested']))}"
    if kind == "next" and fractions:
        return f"{row['answer']} ±{_number(row['disagreement'], 3)}"
    if kind == "next":
        return f"{readable_class(str(row['predicted']))} · BALD {_number(row['bald'])}"
    if kind == "odd":
        why = row.get("stands_out")  # first: a narrow tile keeps the reason, the order already gives the rank
        return (f"{why} · " if isinstance(why, str) and why else "") + f"odd {_number(row['odd'], 3)}"
    if kind == "near":
        return f"{readable_class(str(row['label'])) or 'no label'} · {_number(row['distance'], 2)} away"
    return f"{readable_class(str(row['label'])) or 'no label'} · {_number(row['similarity'], 3)}"


def score_line(row: pd.Series) -> str:
    """The list's figures for one galaxy ("quality 0.0046  issue True"), blanks left out, in lines that fit the
    large view's caption column, each figure whole with its name."""
    def shown(value: object) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)
    fields = [Text(f"{column} {shown(value)}") for column, value in row.items()
              if column not in ("id", "label") and str(value) != ""]
    return pack_fields(fields, CAPTION_COLUMNS - 2).plain


def decision_mark(decision: tuple[str, str] | None) -> str:
    if decision is None:
        return ""
    action, label = decision
    return "✗ " if action == "exclude" else f"→{readable_class(label)} "


class CurationScreen(TileGallery):
    BINDINGS = [Binding("right_square_bracket", "switch_list(1)", "Next list"),
                Binding("left_square_bracket", "switch_list(-1)", "Previous list", show=False),
                Binding("x", "decide('exclude')", "Exclude"), Binding("m", "relabel", "Relabel"),
                Binding("k", "decide('keep')", "Take back"), Binding("s", "similar", "Similar"),
                Binding("p", "map", "Map")]

    def __init__(self, session: CurationSession, kind: str = "issues", listing: pd.DataFrame | None = None,
                 about: str = ""):
        super().__init__(session.dataset, "curation" if listing is None else kind)
        self.session, self.kind, self.about = session, kind, about
        self._listing = listing  # the similar galaxies; the run's own lists come from the session
        self._decisions = session.decisions()
        self._entries: list[tuple[int, str, str]] = []
        self._build_entries()

    def _frame(self) -> pd.DataFrame:
        return self._listing if self._listing is not None else self.session.lists[self.kind]

    def _build_entries(self) -> None:
        """(dataset row, galaxy id, tile caption) for the top of the list (galaxies the catalogue still has)."""
        entries = []
        for _, row in self._frame().head(SHOWN).iterrows():
            galaxy_id = str(row["id"])
            dataset_row = self.session.dataset_row(galaxy_id)
            if dataset_row is not None:
                caption = decision_mark(self._decisions.get(galaxy_id)) + tile_caption(self.kind, row,
                                                                                       self.session.is_fractions)
                entries.append((dataset_row, galaxy_id, caption))
        self._entries = entries

    def entries(self) -> list[tuple[int, str]]:
        return [(row, caption) for row, _id, caption in self._entries]

    def galaxy_ids(self) -> list[str]:
        return [galaxy_id for _row, galaxy_id, _caption in self._entries]

    def heading(self) -> list[Text]:
        frame = self._frame()
        title = {"similar": f"Like {self.about}", "near": f"Near {self.about}"}.get(self.kind) or TITLES[self.kind]
        shown = f" (the top {SHOWN} of {len(frame)})" if len(frame) > SHOWN else ""
        return [Text(f"{self.session.run_id}: {title}{shown}", style="bold")]

    def hints(self) -> tuple[str, ...]:
        lists = ("[ ] list", "p map") if self.kind in ORDER else ()
        return (*lists, "x exclude", "m relabel", "k take back", "s similar")

    def large_galaxies(self) -> list[Galaxy]:
        frame = self._frame().set_index(self._frame()["id"].astype(str))
        galaxies = []
        for dataset_row, galaxy_id, caption in self._entries:
            label = self.session.label_of(galaxy_id)
            text = f"{vote_caption(self.dataset, dataset_row, label or 'no label')}\n{caption}\n" \
                   f"{score_line(frame.loc[galaxy_id])}"
            galaxies.append(Galaxy(lambda row=dataset_row: dataset_picture(self.dataset, row, 256), text))
        return galaxies

    def _focused_id(self) -> str | None:
        position = self.focused_position()
        return None if position is None else self._entries[position][1]

    async def _refresh_decisions(self) -> None:
        position = self.focused_position() or 0
        self._decisions = self.session.decisions()
        self._build_entries()
        await self._show_page(focus=position - self.page * self.per_page)

    # ------------------------------------------------------------------ keys
    async def action_switch_list(self, delta: int) -> None:
        if self.kind not in ORDER:
            return
        self.kind = ORDER[(ORDER.index(self.kind) + delta) % len(ORDER)]
        self._build_entries()
        await self.show_list()

    async def action_decide(self, action: str, label: str = "") -> None:
        galaxy_id = self._focused_id()
        if galaxy_id is None:
            return
        try:
            self.session.decide(galaxy_id, action, label)
        except (GalaxyError, OSError) as exc:
            self.app.notify(str(exc), severity="error")
            return
        said = {"exclude": "excluded from", "relabel": f"relabelled {label} in",
                "keep": "back as the catalogue has it in"}[action]
        self.app.notify(f"{galaxy_id}: {said} the runs that follow ({self.session.overrides_path.name})", timeout=4)
        await self._refresh_decisions()

    def action_relabel(self) -> None:
        galaxy_id = self._focused_id()
        if galaxy_id is None or self.session.is_fractions:
            if self.session.is_fractions:
                self.app.notify("a vote-fraction run learns the volunteers' fractions: exclude (x) a galaxy "
                                "instead", severity="warning")
            return
        classes = self.dataset.classes
        choices = [(name, readable_class(name), key) for name, key in zip(classes, CLASS_KEYS)]

        async def chosen(label: str | None) -> None:
            if label:
                await self.action_decide("relabel", label)
        self.app.push_screen(ChoiceDialog(f"Relabel {galaxy_id} (now {self.session.label_of(galaxy_id) or 'no label'})"
                                          f" as:", choices, dialog_id="relabel"), chosen)

    def action_map(self) -> None:
        def near(found: pd.DataFrame, about: str) -> None:
            listing = found.assign(label=found["id"].map(self.session.label_of))
            self.app.push_screen(CurationScreen(self.session, "near", listing, about))
        self.app.push_screen(MapScreen(self.session, near))

    def similar(self, galaxy_id: str) -> None:
        try:
            found = self.session.similar(galaxy_id)
        except GalaxyError as exc:
            self.app.notify(str(exc), severity="error")
            return
        self.app.push_screen(CurationScreen(self.session, "similar", found, galaxy_id))


def newest_curated_run(runs_dir: Path, dataset: str) -> Path | None:
    """The run whose curation lists are the newest among those of `dataset`."""
    from galaxy_tui.frozen_run import read_config
    found = []
    for summary in runs_dir.glob(f"*/curation/{SUMMARY}"):
        try:
            if read_config(summary.parents[1]).get("dataset", {}).get("name") == dataset:
                found.append((summary.stat().st_mtime, summary.parents[1]))
        except (GalaxyError, OSError):
            continue
    return max(found)[1] if found else None


def similar_in_dataset(app: App, runs_dir: Path, dataset: str) -> Callable[[str], None]:
    """`s` for a galaxy of `dataset` anywhere: the galaxies most like it in its newest curated run."""
    def similar(galaxy_id: str) -> None:
        run_dir = newest_curated_run(runs_dir, dataset)
        if run_dir is None:
            app.notify(f"no run of dataset {dataset!r} is curated yet: u on a finished run in Results (or "
                       f"galaxy-tui curate RUN)", severity="warning", timeout=6)
            return
        similar_in_run(app, run_dir, galaxy_id)
    return similar


def similar_in_run(app: App, run_dir: Path, galaxy_id: str, features: np.ndarray | None = None) -> None:
    """The galaxies most like `galaxy_id` (of the run's dataset; or an image outside it, by its `features`) in the
    run's embedding, as a gallery (the run's lists read in a thread, once while they stay the same)."""
    if not (run_dir / "curation" / SUMMARY).exists():
        app.notify(f"run {run_dir.name} is not curated yet: u in Results curates it (or galaxy-tui curate "
                   f"{run_dir.name})", severity="warning", timeout=6)
        return

    def read() -> None:
        try:
            session = _session(run_dir)
            found = session.similar(galaxy_id) if features is None else session.similar_to(features)
        except (GalaxyError, OSError) as exc:
            deliver(app, app.notify, str(exc), severity="error", timeout=8)
            return
        deliver(app, app.push_screen, CurationScreen(session, "similar", found, galaxy_id))
    app.run_worker(read, thread=True, exclusive=True, group="curation")


_SESSIONS: dict[Path, tuple[float, CurationSession]] = {}


def _session(run_dir: Path) -> CurationSession:
    from galaxy_tui.curation.session import open_session  # the dataset's reader: h5py, when asked
    stamp = (run_dir / "curation" / SUMMARY).stat().st_mtime
    kept = _SESSIONS.get(run_dir)
    if kept is None or kept[0] != stamp:
        _SESSIONS.clear()  # one run's at a time: an embedding can be hundreds of MB
        _SESSIONS[run_dir] = (stamp, open_session(run_dir))
    return _SESSIONS[run_dir][1]


def open_curation(app: App, registry: Registry, run_id: str, run_dir: Path) -> None:
    """Open the run's curation lists (read in a thread); a run without them is offered the curate job."""
    app.run_worker(lambda: _read_session(app, registry, run_id, run_dir), thread=True, exclusive=True,
                   group="curation")


def _read_session(app: App, registry: Registry, run_id: str, run_dir: Path) -> None:
    if not (run_dir / "curation" / SUMMARY).exists():
        def answered(answer: str | None) -> None:
            if answer == "yes":
                app.run_worker(lambda: _start(app, registry, run_id), thread=True, group="curation")
        deliver(app, app.push_screen, confirm(f"Run {run_id} has no curation lists yet. Embed its dataset's "
                                              f"galaxies with its best model and rank them, in the background? "
                                              f"(the Monitor follows it; u again when it ends)", "Curate",
                                              "Not now"), answered)
        return
    try:
        session = _session(run_dir)
    except (GalaxyError, OSError) as exc:
        deliver(app, app.notify, str(exc), severity="error", timeout=8)
        return
    deliver(app, app.push_screen, CurationScreen(session))


def _start(app: App, registry: Registry, run_id: str) -> None:
    try:
        run = curate_run(registry, run_id)
    except (GalaxyError, OSError) as exc:
        deliver(app, app.notify, str(exc), title="cannot curate", severity="error", timeout=10)
        return
    deliver(app, app.notify, f"curating {run.id} (attempt {run.attempt}) in the background: the Monitor follows it",
            timeout=6)
