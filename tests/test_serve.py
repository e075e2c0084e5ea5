"""`galaxy-tui serve`: the FastAPI app through TestClient (answers equal `predict`'s for the same real JPEGs,
every refusal with its status and message, requests batched when they arrive together) and a real uvicorn
on 127.0.0.1 answering a real HTTP upload."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the `serve` extra is not installed")
from fastapi.testclient import TestClient  # noqa: E402

from galaxy_tui.errors import GalaxyError  # noqa: E402
from galaxy_tui.inference.galaxy_sources import file_items  # noqa: E402
from galaxy_tui.inference.predicting import predict_items  # noqa: E402
from galaxy_tui.inference.servable import LoadedRun, load_run  # noqa: E402
from galaxy_tui.serve.batcher import Batcher  # noqa: E402
from galaxy_tui.serve.http_app import Limits, create_app  # noqa: E402
from trained_runs import REALDATA, needs_realdata  # noqa: E402

pytestmark = [pytest.mark.slow, needs_realdata]

JPEGS = sorted(REALDATA.glob("*/*.jpeg"))[::20]  # one or two of each class folder


@pytest.fixture(scope="module")
def loaded(folder_run) -> LoadedRun:  # noqa: ANN001
    return load_run(folder_run[1].dir)


def upload(paths: list[Path]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("file", (path.name, path.read_bytes(), "image/jpeg")) for path in paths]


def test_classify_answers_what_predict_answers_for_the_same_real_jpegs(loaded: LoadedRun) -> None:
    expected = predict_items(loaded, file_items(JPEGS)[0]).output_array
    with TestClient(create_app(loaded)) as client:
        together = client.post("/classify", files=upload(JPEGS))
        alone = client.post("/classify", content=JPEGS[1].read_bytes(), headers={"content-type": "image/jpeg"})
        health = client.get("/health").json()
    assert together.status_code == 200, together.text
    results = together.json()["results"]
    assert [r["file"] for r in results] == [p.name for p in JPEGS]
    got = np.array([[r["probabilities"][c] for c in loaded.outputs] for r in results])
    np.testing.assert_allclose(got, expected, atol=2e-5)
    assert [r["predicted"] for r in results] == [loaded.outputs[i] for i in expected.argmax(1)]
    assert [r["confidence"] for r in results] == pytest.approx(expected.max(1), abs=2e-5)
    assert alone.status_code == 200 and alone.json()["results"][0]["probabilities"] == results[1]["probabilities"]
    assert health["status"] == "ok" and health["images"] == len(JPEGS) + 1


def test_the_model_endpoint_says_what_the_run_expects_and_how_it_scored(loaded: LoadedRun, folder_run) -> None:  # noqa: ANN001
    with TestClient(create_app(loaded, Limits(max_files=3))) as client:
        described = client.get("/model").json()
    assert described["run"] == folder_run[1].id and described["task"] == "classification"
    assert described["classes"] == loaded.outputs and len(described["classes"]) == 6
    assert described["preprocessing"]["image_size"] == 32
    assert described["metrics"]["split"] == "test" and 0 <= described["metrics"]["accuracy"] <= 1
    assert described["limits"]["max_files"] == 3


def test_bad_uploads_are_refused_with_a_status_and_a_message(loaded: LoadedRun) -> None:
    jpeg = JPEGS[0].read_bytes()
    with TestClient(create_app(loaded, Limits(max_bytes=len(jpeg) + 10, max_files=2))) as client:
        not_image = client.post("/classify", files=[("file", ("notes.jpg", b"not a picture", "image/jpeg"))])
        assert not_image.status_code == 400 and "notes.jpg" in not_image.json()["detail"]
        mixed = client.post("/classify", files=[*upload(JPEGS[:1]), ("file", ("x.png", b"\x89PNG\r\n", "image/png"))])
        assert mixed.status_code == 400 and "x.png" in mixed.json()["detail"]
        assert client.post("/classify", data={"name": "m31"}).status_code == 400
        assert "multipart" in client.post("/classify", json={"image": "x"}).json()["detail"]
        too_many = client.post("/classify", files=upload(JPEGS[:3]))
        assert too_many.status_code == 413 and "at most 2 images" in too_many.json()["detail"]
        big = client.post("/classify", files=[("file", ("big.jpg", jpeg + b"\0" * 20, "image/jpeg"))])
        assert big.status_code == 413 and "big.jpg" in big.json()["detail"]
        declared = client.post("/classify", files=[("file", ("huge.jpg", b"\0" * 300_000, "image/jpeg"))])
        assert declared.status_code == 413 and "larger than" in declared.json()["detail"]
        streamed = client.post("/classify", content=(b"\0" * 50_000 for _ in range(8)),
                               headers={"content-type": "image/jpeg"})  # chunked: no Content-Length to read
        assert streamed.status_code == 413
        assert client.post("/classify", files=upload(JPEGS[:1])).status_code == 200  # and it still serves


def test_a_fraction_run_serves_its_answers(fraction_run) -> None:  # noqa: ANN001
    loaded = load_run(fraction_run[1].dir)
    expected = predict_items(loaded, file_items(JPEGS[:2])[0]).output_array
    with TestClient(create_app(loaded)) as client:
        results = client.post("/classify", files=upload(JPEGS[:2])).json()["results"]
        assert client.get("/model").json()["answers"] == loaded.outputs
    got = np.array([[r["fractions"][a] for a in loaded.outputs] for r in results])
    np.testing.assert_allclose(got, expected, atol=2e-5)


def test_requests_that_arrive_together_share_a_forward_pass() -> None:
    """The model is held busy with the first request while seven more arrive: they go as one batch."""
    release, calls = threading.Event(), []

    def classify(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        calls.append(len(images))
        release.wait(5)
        return images.reshape(len(images), -1)[:, :2].astype(np.float32), images[:, 0, 0, 0] * 10

    async def scenario() -> list[tuple[np.ndarray, ...]]:
        batcher = Batcher(classify, max_batch=32, max_wait_s=0.0)
        await batcher.start()
        first = asyncio.create_task(batcher.submit(np.full((1, 2, 2, 3), 0, np.uint8)))
        await asyncio.sleep(0.05)
        rest = [asyncio.create_task(batcher.submit(np.full((1, 2, 2, 3), i, np.uint8))) for i in range(1, 8)]
        await asyncio.sleep(0.05)
        release.set()
        answers = await asyncio.gather(first, *rest)
        await batcher.stop()
        return answers

    answers = asyncio.run(scenario())
    assert calls == [1, 7]
    assert [int(a[0][0, 0]) for a in answers] == list(range(8))  # each caller got its own row of each array
    assert [int(a[1][0]) for a in answers] == [10 * i for i in range(8)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_real_server_answers_a_real_upload(folder_run, loaded: LoadedRun) -> None:  # noqa: ANN001
    root, run = folder_run
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(root), "serve", run.id,
                               "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "COLUMNS": "160"})
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, server.communicate()
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not answer /health"
                time.sleep(0.3)
        with JPEGS[0].open("rb") as handle:
            answer = httpx.post(f"{url}/classify", files={"file": (JPEGS[0].name, handle, "image/jpeg")}, timeout=30)
        assert answer.status_code == 200, answer.text
        expected = predict_items(loaded, file_items(JPEGS[:1])[0]).output_array[0]
        got = [answer.json()["results"][0]["probabilities"][c] for c in loaded.outputs]
        np.testing.assert_allclose(got, expected, atol=2e-5)
        with socket.create_connection(("127.0.0.1", port)) as half:  # a client that leaves mid-upload
            half.sendall(b"POST /classify HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                         b"Content-Length: 100000\r\n\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; "
                         b"filename=\"g.jpg\"\r\n\r\n" + JPEGS[0].read_bytes()[:2000])
            time.sleep(0.5)
        assert httpx.get(f"{url}/health", timeout=5).status_code == 200
        busy = subprocess.run([sys.executable, "-m", "galaxy_tui.cli", "--workspace", str(root), "serve", run.id,
                               "--port", str(port)], capture_output=True, text=True, timeout=60)
        assert busy.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in busy.stderr
    finally:
        server.terminate()
        out, err = server.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}" in out and "Traceback" not in err
    assert err.count("disconnected mid-upload") == 1, err


def test_serve_without_its_extra_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, folder_run) -> None:  # noqa: ANN001
    from galaxy_tui.cli.serve_command import serve
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    with pytest.raises(GalaxyError, match=r"pip install 'galaxy-tui\[serve\]'"):
        serve(folder_run[0], folder_run[1].id, "127.0.0.1", free_port(), 10, 16, 32, None)


def bomb_png(width: int, height: int) -> bytes:
    """A PNG of huge dimensions and a small file (all zeros compress ~1000:1), as a decompression bomb is."""
    import io

    from PIL import Image
    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, "PNG")
    return buffer.getvalue()


def test_an_image_of_too_many_pixels_is_refused_from_its_header(loaded: LoadedRun,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """13000 x 13000 pixels in a 0.2 MB PNG: refused with 413 before a pixel is decoded (decoding raises here)."""
    from PIL import PngImagePlugin
    data = bomb_png(13000, 13000)
    assert len(data) < 512 * 1024

    def never(*_: object) -> None:
        raise AssertionError("the bomb was decoded")

    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", never)
    client = TestClient(create_app(loaded, Limits()))
    answer = client.post("/classify", files=[("file", ("bomb.png", data, "image/png"))])
    assert answer.status_code == 413
    assert "13000x13000 pixels" in answer.json()["detail"] and "16,777,216 pixels" in answer.json()["detail"]
    assert client.get("/model").json()["limits"]["max_pixels"] == 4096 * 4096


def test_a_large_jpeg_is_decoded_small_instead_of_refused() -> None:
    import io

    from PIL import Image

    from galaxy_tui.data.images import ImageTooLarge, decode_upload
    buffer = io.BytesIO()
    Image.new("RGB", (2000, 1600), (90, 60, 30)).save(buffer, "JPEG")
    image = decode_upload(buffer.getvalue(), "big.jpg", max_pixels=1000 * 1000, least_side=224)
    assert image.shape == (800, 1000, 3)  # the decoder's 1/2 scale: under the limit, above the model's size
    with pytest.raises(ImageTooLarge, match="2000x1600 pixels"):  # 1/8 would be needed: below 224 px a side
        decode_upload(buffer.getvalue(), "big.jpg", max_pixels=250 * 200, least_side=224)
    with pytest.raises(ImageTooLarge):
        decode_upload(bomb_png(2000, 1600), "big.png", max_pixels=1000 * 1000)


def test_an_upload_that_stalls_is_answered_408() -> None:
    """Simulates a client that sends its headers and then nothing (receive() never returns)."""
    from galaxy_tui.serve.body_limit import BodyLimit

    async def app(scope, receive, send) -> None:  # noqa: ANN001
        await receive()

    async def stalled() -> dict:
        await asyncio.sleep(3600)
        return {}

    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "headers": [(b"content-length", b"1000")]}
    asyncio.run(BodyLimit(app, limit=10_000, stall_s=0.2)(scope, stalled, send))
    assert sent[0]["status"] == 408 and b"stalled for 0.2 s" in sent[1]["body"]


def test_serve_flags_real_galaxies_to_a_demo_model_and_claims_no_calibrated_confidence(demo_run) -> None:  # noqa: ANN001
    """The demo model has seen only rendered galaxies: each real SDSS upload is answered unlike its training
    galaxies, with its in-domain score and without calibrated probabilities (the same as predict writes)."""
    _, run = demo_run
    demo = load_run(run.dir)
    expected = predict_items(demo, file_items(JPEGS)[0])
    with TestClient(create_app(demo)) as client:
        results = client.post("/classify", files=upload(JPEGS)).json()["results"]
        described = client.get("/model").json()["in_domain_check"]
    caution = demo.caution(expected.distance_array)
    assert caution is not None and caution.unlike.mean() >= 0.9
    assert [r["unlike_training"] for r in results] == caution.unlike.tolist()
    assert [r["in_domain"] for r in results] == pytest.approx(caution.in_domain, abs=1e-4)
    for result in results:
        assert ("calibrated_probabilities" in result) != result["unlike_training"]
        assert ("caution" in result) == result["unlike_training"]
    assert described["flagged"] <= 0.1 and "Mahalanobis" in described["method"]
