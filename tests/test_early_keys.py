"""A key typed while the program starts is kept. textual-image probes the terminal as it is imported, reading
stdin for the answer: the keys around the answer are set aside and replayed to the app once it is on screen.
Measured in tmux, `2` sent 0.2-0.7 s after `galaxy-tui` started: kept 4 of 6 before (once the terminal's answer
opened the help), 6 of 6 after."""

from __future__ import annotations

import os
import pty
import sys
import termios
from pathlib import Path

import pytest

from galaxy_tui.app.early_keys import capture_keeping_keys, kept_keys, key_events
from galaxy_tui.app.main import GalaxyApp
from pilot_helpers import NoGpu, until
from workspace_fixture import tiny_workspace

DA1_ANSWER = "\x1b[?62;4c"  # what a terminal answers to textual-image's Sixel question


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """A real pseudo-terminal as stdin, in its default line mode: (the side a person types on, stdin)."""
    leader, follower = pty.openpty()
    stdin = os.fdopen(follower, "r")
    monkeypatch.setattr(sys, "__stdin__", stdin)
    kept_keys()
    yield leader, stdin
    stdin.close()
    os.close(leader)


def test_keys_typed_around_the_answer_are_kept(terminal) -> None:  # noqa: ANN001
    leader, stdin = terminal
    mode = termios.tcgetattr(stdin.fileno())
    os.write(leader, f"2{DA1_ANSWER}l".encode())  # typed before the answer came, and after
    with capture_keeping_keys("\x1b[?", "c", timeout=0.5) as response:
        pass  # (textual-image writes its question here)
    assert response.sequence == DA1_ANSWER
    assert kept_keys() == "2l" and kept_keys() == ""
    assert termios.tcgetattr(stdin.fileno()) == mode  # the terminal's mode is given back


def test_without_an_answer_every_byte_was_typed(terminal) -> None:  # noqa: ANN001
    leader, _stdin = terminal
    os.write(leader, b"2")
    with pytest.raises(TimeoutError), capture_keeping_keys("\x1b_G", "\x1b\\", timeout=0.2):
        pass  # a terminal without the graphics protocol says nothing; textual-image takes the timeout as "no"
    assert kept_keys() == "2"


def test_typed_text_becomes_the_keys_textual_would_have_read() -> None:
    assert [event.key for event in key_events("2l\x1b[A?")] == ["2", "l", "up", "question_mark"]


async def test_the_app_acts_on_a_key_typed_before_it_started(tmp_path: Path) -> None:
    tiny_workspace(tmp_path)
    app = GalaxyApp(tmp_path, telemetry=NoGpu(), typed_early="2")
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.active_pane == "experiments")
