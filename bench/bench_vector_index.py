"""Indexing notes through Timber (models + outbox + drain) beside fastembed's ``embed`` alone.

    PYTHONPATH=src:plugins/canopy/src:plugins/grove/src python bench/bench_vector_index.py --notes 5000 --rounds 3

Both sides embed the same texts with the same fastembed model object (the offline
all-MiniLM-L6-v2, int8 ONNX), in the same process, interleaved, batch size 64:

* fastembed: ``TextEmbedding.embed(texts, batch_size=64)``, materialized;
* Timber: Grove's ``ResearchSession`` rows added through the ORM, ``--per-commit`` rows per
  transaction (each commit records outbox rows in its transaction and drains inline:
  read the outbox, read the rows, embed, upsert into the embedded store, delete the
  outbox rows), timed until every note is a point and the outbox is empty.

Ratio = fastembed time / Timber time (1.0 = Timber adds nothing). Target: >= 0.9.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from typing import Any

SUBJECTS = ["Apple", "Microsoft", "the central bank", "oil producers", "the chip maker", "a regional lender",
            "the airline", "the retailer", "bond traders", "the utility"]
VERBS = ["reported", "warned about", "raised its outlook for", "cut guidance on", "saw strong demand for",
         "announced a buyback after", "faced questions over", "beat estimates on", "missed forecasts for",
         "restructured around"]
OBJECTS = ["quarterly earnings", "services revenue", "interest rate expectations", "supply chain costs",
           "cloud growth", "loan losses", "fuel prices", "holiday sales", "long-dated yields", "grid investment"]
TAILS = ["ahead of the call", "in a volatile session", "as analysts revised targets", "despite currency headwinds",
         "with margins under pressure", "after a strong prior quarter", "while inventories stayed high", ""]


def notes(n: int, seed: int = 7) -> list[str]:
    """``n`` distinct short research notes (12-25 words), reproducible."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        s = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(TAILS)}".strip()
        out.append(f"Note {i}: {s}; next we check {rng.choice(OBJECTS)} and {rng.choice(OBJECTS)}.")
    return out


def direct(model: Any, texts: list[str], batch_size: int) -> float:
    started = time.perf_counter()
    vectors = list(model.embed(texts, batch_size=batch_size))
    elapsed = time.perf_counter() - started
    assert len(vectors) == len(texts)
    return elapsed


def through_timber(texts: list[str], per_commit: int, home: str) -> float:
    import timber_core
    from timber_core.config import TimberConfig
    from timber_core.services.persistence import user_service

    os.makedirs(home, exist_ok=True)
    os.environ["TIMBER_HOME"] = home
    TimberConfig._cache.clear()
    kernel = timber_core.initialize_timber("grove", database_url=f"sqlite:///{home}/timber.db")
    user = user_service.create_user("bench@example.com", "bench")
    Research = kernel.models["ResearchSession"]
    started = time.perf_counter()
    for start in range(0, len(texts), per_commit):
        with kernel.db.session_scope() as session:
            session.add_all([Research(user_id=user, symbol="AAPL", notes=t) for t in texts[start:start + per_commit]])
    elapsed = time.perf_counter() - started
    points = kernel.vectors.store.count("research_sessions")
    with timber_core.platform_context(), kernel.db.connection() as conn:
        pending = conn.exec_driver_sql("SELECT count(*) FROM timber_vector_outbox").scalar()
    kernel.close()
    assert (points, pending) == (len(texts), 0), (points, pending)
    return elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notes", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--per-commit", type=int, default=500, help="notes per transaction on the Timber side")
    args = parser.parse_args(argv)

    from timber_core.vectors.embeddings import Embedder, prepare_offline_model_dir

    work = tempfile.mkdtemp(prefix="timber-bench-index-")
    os.environ["TIMBER_EMBEDDING_MODEL_PATH"] = prepare_offline_model_dir(os.path.join(work, "model"))
    os.environ.pop("QDRANT_URL", None)
    os.environ["TIMBER_VECTOR_DRAIN"] = "inline"
    texts = notes(args.notes)
    embedder = Embedder("BAAI/bge-small-en-v1.5")  # the name Grove's YAML gives; the offline model serves it
    model = embedder._model()  # the fastembed TextEmbedding Timber's drain uses: one load per process
    direct(model, texts[:200], embedder.batch_size)  # warm-up (ONNX session, tokenizer)

    fast, timber = [], []
    for r in range(args.rounds):
        fast.append(direct(model, texts, embedder.batch_size))
        timber.append(through_timber(texts, args.per_commit, os.path.join(work, f"home{r}")))
        print(f"round {r + 1}: fastembed {fast[-1]:.2f} s, Timber {timber[-1]:.2f} s, "
              f"ratio {fast[-1] / timber[-1]:.3f}", flush=True)
    f, t = statistics.median(fast), statistics.median(timber)
    print(f"\n| notes | fastembed embed | Timber (models + outbox + drain + store) | ratio |")
    print(f"|---:|---:|---:|---:|")
    print(f"| {args.notes:,} | {f:.2f} s ({args.notes / f:.0f} notes/s) | {t:.2f} s ({args.notes / t:.0f} notes/s) "
          f"| {f / t:.3f}x |")
    print(f"\npython {sys.version.split()[0]}, {os.cpu_count()} CPUs, median of {args.rounds} interleaved rounds, "
          f"{args.per_commit} notes per commit")


if __name__ == "__main__":
    main()
