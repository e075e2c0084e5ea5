"""The HTTP face of a trained run: POST /classify (one or several images, multipart or a raw image body),
GET /health and GET /model. Uploads are decoded and prepared on a thread pool exactly as `predict` prepares
files; requests that arrive together go to the device as one batch."""

from __future__ import annotations

import asyncio
import logging
import math
import time
import warnings
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any, BinaryIO

import numpy as np
from fastapi import FastAPI, HTTPException, Request, Response
from PIL.Image import DecompressionBombWarning
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as FormRefused
from starlette.requests import ClientDisconnect

from galaxy_tui.analysis.domain import UNLIKE
from galaxy_tui.data.images import ImageTooLarge, ImageUnreadable, decode_upload, resize_image
from galaxy_tui.inference.predicting import Forward
from galaxy_tui.inference.servable import LoadedRun
from galaxy_tui.serve.batcher import Batcher
from galaxy_tui.serve.body_limit import BodyLimit
from galaxy_tui.serve.limits import Limits
from galaxy_tui.task_kinds import task_kind

MULTIPART_OVERHEAD = 64 * 1024  # boundaries and part headers around the files
log = logging.getLogger("galaxy_tui.serve")


def _scalars(metrics: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in metrics.items() if isinstance(value, (int, float, str, bool))}


def answers(loaded: LoadedRun, names: list[str], outputs: np.ndarray,
            distances: np.ndarray | None) -> list[dict[str, Any]]:
    """Each image's JSON, the figures `predict` writes (built directly: a DataFrame per request would cost
    the event loop ~0.8 ms): the class, its probability and every class's, with the calibrated ones where the
    run fitted a temperature and the image is like its training galaxies, or a vote-fraction run's answers;
    then how like the training galaxies it is, where the run can tell."""
    caution = loaded.caution(distances)
    results = loaded.reading.answers(names, loaded.outputs, outputs, loaded.temperature,
                                     None if caution is None else caution.unlike)
    if caution is not None:
        for result, in_domain, unlike in zip(results, caution.in_domain, caution.unlike):
            result["in_domain"] = round(float(in_domain), 4)
            result["unlike_training"] = bool(unlike)
            if unlike:
                result["caution"] = f"{UNLIKE}: no calibrated confidence"
    return results


def _classified(loaded: LoadedRun, forward: Forward, images: np.ndarray) -> tuple[np.ndarray, ...]:
    """The outputs, and the distances from the training galaxies where the run keeps their record."""
    outputs, _, features = forward(images)
    if loaded.domain is None or features is None:
        return (outputs,)
    return outputs, loaded.domain.distances(features)


def _size(upload: UploadFile) -> int:
    if upload.size is not None:
        return upload.size
    upload.file.seek(0, 2)
    size = upload.file.tell()
    upload.file.seek(0)
    return size


def create_app(loaded: LoadedRun, limits: Limits = Limits()) -> FastAPI:
    forward = Forward(loaded, tta=False, features=False)
    batcher = Batcher(lambda images: _classified(loaded, forward, images), limits.max_batch)
    decoders = ThreadPoolExecutor(max_workers=limits.decodes, thread_name_prefix="galaxy-decode")
    if limits.max_pixels is not None:  # our limit is the stricter one: Pillow's warning about it says nothing new
        warnings.filterwarnings("ignore", category=DecompressionBombWarning)
    least_side = math.ceil(loaded.image_size / loaded.crop)  # a drafted JPEG keeps this, before the centre crop
    started = time.time()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        yield
        await batcher.stop()
        decoders.shutdown(wait=False)

    app = FastAPI(title=f"galaxy-tui · {loaded.run_id}", lifespan=lifespan,
                  description="Classify galaxy images with a run trained in galaxy-tui.")
    app.add_middleware(BodyLimit, limit=limits.max_files * limits.max_bytes + MULTIPART_OVERHEAD,
                       stall_s=limits.stall_s)

    def prepared(source: bytes | BinaryIO, name: str) -> np.ndarray:
        return resize_image(decode_upload(source, name, limits.max_pixels, least_side), loaded.image_size,
                            loaded.crop)

    async def uploads(request: Request) -> list[tuple[str, int, bytes | BinaryIO]]:
        """Each image's name, size and where to read it: the body itself, or the file the form spooled it to
        (read by a decoder, so a request holds at most the form's small in-memory spool per image)."""
        kind = request.headers.get("content-type", "")
        if kind.startswith("image/"):
            body = await request.body()
            return [("image", len(body), body)]
        if not kind.startswith("multipart/form-data"):
            raise HTTPException(400, "send images as multipart form files (curl -F file=@galaxy.jpg URL/classify) "
                                     "or one image as the body with an image/* Content-Type")
        try:
            form = await request.form(max_files=limits.max_files, max_fields=limits.max_files)
        except FormRefused as exc:
            if "Too many files" in str(exc.detail):
                raise HTTPException(413, f"at most {limits.max_files} images per request (the server's "
                                         f"--max-files); send the rest in another request") from None
            raise
        files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
        if not files:
            raise HTTPException(400, "the form has no files: send each image as a file field "
                                     "(curl -F file=@galaxy.jpg URL/classify)")
        return [(upload.filename or f"file {i + 1}", _size(upload), upload.file) for i, upload in enumerate(files)]

    @app.post("/classify", response_model=None)
    async def classify(request: Request) -> dict[str, Any] | Response:
        received = time.perf_counter()
        try:
            images = await uploads(request)
        except ClientDisconnect:  # nobody is left to answer: one line in the log, not a traceback
            log.warning("a client disconnected mid-upload (%s)", request.client.host if request.client else "?")
            return Response(status_code=499)
        for name, size, _ in images:
            if size > limits.max_bytes:
                raise HTTPException(413, f"{name} is larger than {limits.max_bytes / 2**20:g} MiB (the server's "
                                         f"--max-upload-mb)")
        loop = asyncio.get_running_loop()
        try:
            pixels = await asyncio.gather(*(loop.run_in_executor(decoders, prepared, source, name)
                                            for name, _, source in images))
        except ImageTooLarge as exc:
            raise HTTPException(413, str(exc)) from None
        except ImageUnreadable as exc:
            raise HTTPException(400, f"not an image this server can read: {exc}") from None
        outputs, *distances = await batcher.submit(np.stack(pixels))
        return {"run": loaded.run_id, "results": answers(loaded, [name for name, _, _ in images], outputs,
                                                         distances[0] if distances else None),
                "seconds": round(time.perf_counter() - received, 4)}

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "run": loaded.run_id, "device": str(loaded.device),
                "uptime_s": round(time.time() - started, 1), "images": batcher.images, "batches": batcher.batches}

    @app.get("/model")
    def model() -> dict[str, Any]:
        return {"run": loaded.run_id, "task": loaded.task,
                task_kind(loaded.task).outputs_word: loaded.outputs,
                "preprocessing": loaded.preprocessing, "temperature": loaded.temperature,
                "in_domain_check": loaded.metrics.get("domain"),
                "metrics": _scalars(loaded.metrics), "limits": asdict(limits)}

    return app
