"""The app's view of runs on disk: a background reader that posts batches; the main thread folds them.

Only appended bytes are read (EventTail). The reader lists runs about once a second and tails the
selected run a few times a second; widgets repaint from the models on their own timers.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from galaxy_tui.analysis.metrics_file import read_metrics
from galaxy_tui.events import FINAL_STATES, Event, EventTail
from galaxy_tui.records.notes import NOTES_FILE, RunNotes, read_notes
from galaxy_tui.run_model import RunModel
from galaxy_tui.runs import RunInfo, run_info

LIST_INTERVAL_S = 1.0
TAIL_INTERVAL_S = 0.25


@dataclass
class RunRecord:
    info: RunInfo
    model: RunModel = field(default_factory=RunModel)
    metrics: dict | None = None
    metrics_mtime: float = 0.0
    notes: RunNotes = field(default_factory=RunNotes)

    def refresh_metrics(self) -> bool:
        """Re-read results/metrics.json when it changed (a skip re-evaluates a finished run)."""
        path = self.info.dir / "results" / "metrics.json"
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            return False
        if mtime == self.metrics_mtime:
            return False
        self.metrics, self.metrics_mtime = read_metrics(self.info.dir), mtime
        return True


def _listed(info: RunInfo) -> tuple:
    """What the runs list shows of a run."""
    return info.state, info.epoch, info.epochs, info.best_metric


class RunStore:
    """Holds every run's info and, for runs that were monitored, its folded event model.

    Two views choose runs independently: the Monitor follows the newest live run unless the person
    pinned one; Results shows the run the person browsed to, else the newest finished one."""

    def __init__(self, runs_dir: Path):
        self.runs_dir = runs_dir
        self.records: dict[str, RunRecord] = {}
        self.pinned: str | None = None    # the Monitor's run, chosen by the person
        self.browsed: str | None = None   # the Results' run, chosen by the person
        self.marked: list[str] = []       # runs marked in the runs list for a diff, an export, an overlay
        self.version = 0        # anything changed: events, infos, selection
        self.runs_version = 0   # the list of runs or their states changed
        self._tails: dict[str, EventTail] = {}
        self._ordered: list[RunRecord] = []  # newest first; rebuilt only when a scan changed something
        self._settled: dict[str, tuple[tuple, RunInfo]] = {}  # the reader thread's own
        self._notes_read: dict[str, tuple[tuple, RunNotes]] = {}  # the reader thread's own

    # ---- called from the reader thread: reads files, returns plain data
    def scan(self) -> tuple[list[RunInfo], dict[str, RunNotes]]:
        """Every run, newest first, and each run's notes. An ended run whose status.json is unchanged
        (same mtime, size and inode) is not read again, nor are unchanged notes: with a thousand finished
        runs a scan is two thousand stats, not parses."""
        if not self.runs_dir.is_dir():
            return [], {}
        infos, notes = [], {}
        with os.scandir(self.runs_dir) as entries:
            for entry in entries:
                if entry.name.startswith("."):  # a run being deleted
                    continue
                try:
                    stat = os.stat(os.path.join(entry.path, "status.json"))
                except OSError:
                    continue
                notes[entry.name] = self._read_notes(entry.path, entry.name)
                signature = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
                settled = self._settled.get(entry.name)
                if settled is not None and settled[0] == signature:
                    infos.append(settled[1])
                    continue
                info = run_info(Path(entry.path))
                if info.state in FINAL_STATES:  # live runs are read every time: a dead worker changes no file
                    self._settled[entry.name] = (signature, info)
                infos.append(info)
        return sorted(infos, key=lambda r: r.started, reverse=True), notes

    def _read_notes(self, folder: str, run_id: str) -> RunNotes:
        try:
            stat = os.stat(os.path.join(folder, NOTES_FILE))
            signature: tuple = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        except OSError:
            signature = ()
        known = self._notes_read.get(run_id)
        if known is not None and known[0] == signature:
            return known[1]
        notes = read_notes(Path(folder)) if signature else RunNotes()
        self._notes_read[run_id] = (signature, notes)
        return notes

    def read_selected(self) -> tuple[str, list[Event]] | None:
        run_id = self.selected
        if run_id is None:
            return None
        tail = self._tails.setdefault(run_id, EventTail(self.runs_dir / run_id / "events.jsonl"))
        return run_id, tail.read_new()

    # ---- called on the main thread: folds what the reader found
    def apply_scan(self, infos: list[RunInfo], notes: dict[str, RunNotes] | None = None) -> None:
        """Fold a listing in. A heartbeat alone (status.json rewritten with a new `updated`) changes
        nothing anyone sees, so it bumps no version and repaints nothing."""
        changed = listed = False
        for run_id, run_notes in (notes or {}).items():
            record = self.records.get(run_id)
            if record is not None and record.notes is not run_notes:
                record.notes = run_notes
                changed = listed = True
        for info in infos:
            record = self.records.get(info.id)
            if record is None:
                record = self.records[info.id] = RunRecord(info, notes=(notes or {}).get(info.id, RunNotes()))
                changed = listed = True
            elif record.info is info:
                continue  # an ended run the reader did not need to read again
            elif record.info != info:
                before, record.info = record.info, info
                if replace(before, updated=0.0) != replace(info, updated=0.0):
                    changed = True
                    listed = listed or _listed(before) != _listed(info)
            if info.state == "finished" and record.refresh_metrics():
                changed = listed = True
        gone = set(self.records) - {i.id for i in infos}
        for run_id in gone:
            del self.records[run_id]
        self.marked = [run_id for run_id in self.marked if run_id not in gone]
        if changed or gone:
            self.version += 1
            self._ordered = sorted(self.records.values(), key=lambda r: r.info.started, reverse=True)
        if listed or gone:
            self.runs_version += 1

    def apply_events(self, run_id: str, events: list[Event]) -> None:
        record = self.records.get(run_id)
        if record is not None and events:
            record.model.apply(events)
            self.version += 1

    def pin(self, run_id: str | None) -> None:
        """The Monitor shows `run_id` from now on; None: it follows the newest live run again."""
        if run_id != self.pinned:
            self.pinned = run_id
            self.version += 1
            self.runs_version += 1

    def toggle_mark(self, run_id: str) -> None:
        if run_id in self.marked:
            self.marked.remove(run_id)
        else:
            self.marked.append(run_id)
        self.version += 1
        self.runs_version += 1

    def browse(self, run_id: str) -> None:
        if run_id != self.browsed:
            self.browsed = run_id
            self.version += 1
            self.runs_version += 1

    @property
    def live_count(self) -> int:
        return sum(r.info.is_live for r in self.records.values())

    @property
    def selected(self) -> str | None:
        """The Monitor's run: the pinned one, else the newest live run, else the newest run."""
        if self.pinned in self.records:
            return self.pinned
        ordered = self.ordered()
        live = [r for r in ordered if r.info.is_live]
        return (live or ordered)[0].info.id if ordered else None

    @property
    def current(self) -> RunRecord | None:
        """The Monitor's record."""
        return self.records.get(self.selected) if self.selected else None

    @property
    def browsed_record(self) -> RunRecord | None:
        """The Results' record: the browsed run, else the newest finished run, else the Monitor's."""
        if self.browsed in self.records:
            return self.records[self.browsed]
        finished = [r for r in self.ordered() if r.info.state == "finished"]
        return finished[0] if finished else self.current

    def ordered(self) -> list[RunRecord]:
        """Newest first (read several times a second by the panes: kept, not sorted per read)."""
        return self._ordered


class StoreReader(threading.Thread):
    """Reads the disk for the store and hands results to `deliver` (which hops to the UI thread)."""

    def __init__(self, store: RunStore, deliver_scan, deliver_events):  # noqa: ANN001
        super().__init__(name="run-reader", daemon=True)
        self.store = store
        self.deliver_scan = deliver_scan
        self.deliver_events = deliver_events
        self.stopping = threading.Event()
        self.wake = threading.Event()

    def run(self) -> None:
        last_list = 0.0
        while not self.stopping.is_set():
            now = time.monotonic()
            if now - last_list >= LIST_INTERVAL_S or self.wake.is_set():
                self.wake.clear()
                self.deliver_scan(*self.store.scan())
                last_list = now
            found = self.store.read_selected()
            if found and found[1]:
                self.deliver_events(*found)
                continue  # more may be waiting: read again at once while catching up
            self.stopping.wait(TAIL_INTERVAL_S)
