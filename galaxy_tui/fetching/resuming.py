"""A downloader for pooch that resumes: pooch checks the hash and moves the file into place, but starts every
attempt from the first byte into a new temporary file. This keeps the bytes of a broken-off download in
`<file>.part` beside the others and asks the server for the rest (an HTTP Range request); a server that ignores
the range sends the whole file again, which is written from the start."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

CHUNK = 1 << 16  # what a broken-off connection can lose of what it sent
Progress = Callable[[str, int, int | None], None]  # file name, bytes so far, total bytes (None: unknown)


class ResumingDownloader:
    def __init__(self, part: Path, progress: Progress, timeout_s: float):
        self.part, self.progress, self.timeout_s = part, progress, timeout_s

    def __call__(self, url: str, output_file: str, _pooch: Any, check_only: bool = False) -> bool | None:
        have = self.part.stat().st_size if self.part.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        with requests.get(url, headers=headers, stream=True, timeout=self.timeout_s) as answer:
            if check_only:
                return answer.status_code < 400
            if have and answer.status_code == 416:  # nothing is left to send: the part is whole
                os.replace(self.part, output_file)
                return None
            answer.raise_for_status()
            resumed = have > 0 and answer.status_code == 206 and \
                answer.headers.get("Content-Range", "").startswith(f"bytes {have}-")
            done = have if resumed else 0
            length = answer.headers.get("Content-Length")
            total = done + int(length) if length and length.isdigit() else None
            with open(self.part, "ab" if resumed else "wb") as out:
                for chunk in answer.iter_content(CHUNK):
                    out.write(chunk)
                    done += len(chunk)
                    self.progress(self.part.name.removesuffix(".part"), done, total)
        os.replace(self.part, output_file)  # pooch checks the hash of this and moves it into place
        return None
