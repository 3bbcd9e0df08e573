"""A headless turn waiting for a person: the review page is served while it waits, and a decision
posted through that page's API lets the turn go on."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request

from flenwheel.core.review.gate import scope_for
from flenwheel.core.turn.config import TurnConfig
from flenwheel.core.turn.turn import Turn


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _post(url: str, body: dict, origin: str):
    request = urllib.request.Request(url, json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "Origin": origin})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_turn_serves_the_page_and_continues_after_the_decisions(project, noise_image):
    dataset = project.create_dataset("enriched")
    ids = [dataset.add_image(noise_image((64, 64), seed=i), stem=f"edit{i}").id for i in range(2)]
    port = _free_port()
    config = TurnConfig.model_validate({"review": {"mode": "wait", "port": port, "timeout_minutes": 1}})
    lines: list[str] = []
    turn = Turn(project, config, auto=False, log=lines.append)
    result: dict = {}
    scope = scope_for(project, "enriched")
    worker = threading.Thread(target=lambda: result.update(handle=turn.review("enriched", scope)))
    worker.start()
    base = f"http://127.0.0.1:{port}"
    api = f"{base}/flenwheel/review"
    for _ in range(100):
        try:
            key = _get(f"{api}/projects")["projects"][0]["key"]
            break
        except OSError:
            time.sleep(0.1)
    items = _get(f"{api}/{key}/items?stage=enriched&version=v1")
    assert {item["id"] for item in items["items"]} == set(ids)
    assert any(f"open http://localhost:{port}/?stage=enriched&version=v1" in line for line in lines)
    for image_id in ids:
        _post(f"{api}/{key}/decide", {"stage": "enriched", "version": "v1", "id": image_id, "label": "good",
                                      "reviewer": "ada"}, base)
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert len(result["handle"]) == 2
    assert (dataset.path / "good").is_dir()
    with socket.socket() as probe:  # the page is gone once the review is over
        assert probe.connect_ex(("127.0.0.1", port)) != 0
