"""Text in collections over HTTP (docs/api.md, Text search): the embedders this daemon can run."""

from __future__ import annotations

import pytest

from daemon.app import create_app
from daemon.settings import Settings
from tests import tiny_model
from tests.helpers import problem, signed_up


@pytest.fixture
async def text_api(aiohttp_client, data_dir, tmp_path, monkeypatch):
    """The real app, with the tests' own tiny model in BASTION_EMBED_MODEL_DIR and an empty fastembed cache."""
    monkeypatch.setenv("FASTEMBED_CACHE_PATH", str(tmp_path / "fastembed-cache"))
    tiny_model.write(tmp_path / "models" / tiny_model.NAME)
    settings = Settings.from_env({"BASTION_EMBED_MODEL_DIR": str(tmp_path / "models")}, data_dir=data_dir)
    return await aiohttp_client(create_app(settings))


async def test_the_embedders_list_names_the_models_this_daemon_can_run(text_api):
    carol = await signed_up(text_api, "carol@example.com")
    response = await text_api.get("/api/v1/embedders", headers=carol.headers)
    assert response.status == 200
    items = (await response.json())["items"]
    assert items[0] == {"name": tiny_model.NAME, "dimension": tiny_model.DIMENSION, "available": True}
    bge = next(item for item in items if item["name"] == "BAAI/bge-small-en-v1.5")
    assert bge == {"name": "BAAI/bge-small-en-v1.5", "dimension": 384, "available": False}


async def test_the_embedders_list_needs_a_signed_in_caller(text_api):
    response = await text_api.get("/api/v1/embedders")
    assert response.status == 401 and (await problem(response))["code"] == "unauthorized"
