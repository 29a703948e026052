"""The embedder built from the application's mem0 embedder config: mem0's own factory for
its providers, a custom EmbeddingBase subclass by `class`, and the shipped MiniLM one
giving real sentence embeddings offline."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from components.migrate.embed import load_embedder, read_embedder_config
from components.migrate.records import MigrationError

MINILM = {"provider": "class",
          "config": {"class": "components.migrate.minilm:MiniLMEmbedder"}}


@pytest.fixture(autouse=True)
def _offline_mem0(tmp_path_factory: pytest.TempPathFactory,
                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEM0_TELEMETRY", "False")
    monkeypatch.setenv("MEM0_DIR", str(tmp_path_factory.mktemp("mem0-dir")))


def write(path: Path, document: object) -> Path:
    path.write_text(json.dumps(document) if path.suffix == ".json" else yaml.safe_dump(document))
    return path


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(
        sum(x * x for x in a) * sum(y * y for y in b))


def test_minilm_from_a_config_file_gives_real_sentence_embeddings(tmp_path: Path) -> None:
    embedder = load_embedder(write(tmp_path / "embedder.json", MINILM), 384)
    assert embedder.name == "class:MiniLMEmbedder" and embedder.dims == 384
    tea, tea_again, engine = embedder.embed([
        "I love drinking green tea in the morning",
        "Every morning I enjoy a cup of green tea",
        "The car's diesel engine needs a new fuel pump"])
    assert len(tea) == len(tea_again) == len(engine) == 384
    assert cosine(tea, tea_again) > 0.7 > cosine(tea, engine) + 0.3
    assert cosine(tea, tea) == pytest.approx(1.0, abs=1e-5)


def test_mem0s_whole_config_in_yaml_uses_its_embedder_section(tmp_path: Path) -> None:
    config = {"vector_store": {"provider": "pgvector", "config": {}},
              "llm": {"provider": "openai", "config": {}}, "embedder": MINILM}
    path = write(tmp_path / "mem0.yaml", config)
    assert read_embedder_config(path) == {"provider": "class", "config": MINILM["config"]}
    assert len(load_embedder(path, 384).embed(["one text"])[0]) == 384


def test_dimensions_that_differ_from_the_stacks_name_both(tmp_path: Path) -> None:
    with pytest.raises(MigrationError) as wrong:
        load_embedder(write(tmp_path / "embedder.json", MINILM), 768)
    message = str(wrong.value)
    assert "class:MiniLMEmbedder gives 384-dimension vectors" in message
    assert "the stack's vector column has 768" in message


def test_mem0s_factory_builds_its_providers(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # mem0's OpenAI embedder, built by its factory, aimed at a closed port: the probe
    # embedding fails before anything could be written, and the error says which.
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    path = write(tmp_path / "embedder.json", {"provider": "openai", "config": {
        "api_key": "sk-offline", "model": "text-embedding-3-small",
        "openai_base_url": "http://127.0.0.1:9/v1"}})
    with pytest.raises(MigrationError, match=r"openai:text-embedding-3-small .* failed on a "
                                             r"probe text"):
        load_embedder(path, 1536)


@pytest.mark.parametrize(("document", "message"), [
    ({"provider": "word2vec", "config": {}}, "provider 'word2vec' is not one mem0 supports"),
    ({"provider": "class", "config": {}}, 'needs config.class as "module:Name"'),
    ({"provider": "class", "config": {"class": "json:JSONDecoder"}},
     "not a subclass of mem0.embeddings.base.EmbeddingBase"),
    ({"provider": "class", "config": {"class": "no.such.module:Thing"}}, "cannot load"),
    ({"model": "no provider"}, "give mem0's config with an `embedder` section"),
])
def test_bad_configs_say_what_is_wrong(tmp_path: Path, document: object,
                                       message: str) -> None:
    with pytest.raises(MigrationError, match="embedder config .*" + message.replace(
            "(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        load_embedder(write(tmp_path / "embedder.json", document), 384)


def test_a_file_that_is_not_json_is_named(tmp_path: Path) -> None:
    path = tmp_path / "embedder.json"
    path.write_text("{provider: ")
    with pytest.raises(MigrationError, match="is not valid JSON or YAML"):
        load_embedder(path, 384)
