"""Benchmark of Timber's vector stores: filtered search latency and recall@10.

Usage (from the repository root)::

    PYTHONPATH=src python bench/bench_vector_search.py [--points 10000,100000] [--queries 200]
        [--local-queries 30] [--sentences 3000] [--recall-queries 200]

(a) Latency: random unit 384-d vectors (latency does not depend on meaning, so random
    data is fine for it; it is the *hard* case for HNSW recall), payload
    ``app`` in 2 apps and ``user_id`` in 10 users. Every query is filtered on
    ``app`` + ``user_id`` as Timber's service does (1/20 of the points match).
    The default embedded store (SqliteVecStore, sqlite-vec, exact), the Edge store
    (EdgeStore, qdrant-edge-py, HNSW built by ``optimize()``; their queries interleaved) and
    qdrant-client's local mode (``QdrantServerStore(path=tmp)``, brute force in Python)
    get the SAME points and the same queries, through Timber's store interface.
    Local mode is slow at 100k, so it answers only ``--local-queries`` of them; its
    answers are exact, which also gives EdgeStore's recall@10 on random vectors.
(b) Recall@10 on real embeddings: ``--sentences`` generated sentences embedded with
    the offline all-MiniLM-L6-v2 model, EdgeStore (HNSW forced with a low indexing
    threshold so the graph really is used) against exact numpy search, unfiltered and
    filtered by app + user.

Prints markdown tables. Takes about 5 minutes on a 2-core machine with the defaults.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from timber_core.vectors.edge import EdgeStore
from timber_core.vectors.embeddings import Embedder, prepare_offline_model_dir
from timber_core.vectors.server import QdrantServerStore
from timber_core.vectors.sqlitevec import SqliteVecStore
from timber_core.vectors.store import Point, VectorStore

DIM = 384
APPS = ["grove", "canopy"]
USERS = [f"user-{i}" for i in range(10)]
FIELDS = ["app", "user_id"]


def log(msg: str) -> None:
    print(f"# {msg}", file=sys.stderr, flush=True)


def unit_vectors(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def payload(i: int) -> dict[str, str]:
    return {"app": APPS[i % len(APPS)], "user_id": USERS[(i // len(APPS)) % len(USERS)], "model": "Note"}


def load(store: VectorStore, x: np.ndarray, batch: int = 2000) -> None:
    store.ensure_collection("notes", DIM, FIELDS)
    for start in range(0, len(x), batch):
        store.upsert("notes", [Point(str(i), x[i].tolist(), payload(i)) for i in range(start, min(len(x), start + batch))])


def timed_queries(
    store: VectorStore, queries: np.ndarray, filters: Sequence[dict[str, str]], limit: int = 10
) -> tuple[list[float], list[list[str]]]:
    times, results = [], []
    for q, must in zip(queries, filters):
        vector = q.tolist()
        t = time.perf_counter()
        hits = store.search("notes", vector, must=must, limit=limit)
        times.append(time.perf_counter() - t)
        results.append([h.id for h in hits])
    return times, results


def ms(values: Sequence[float], pct: float) -> float:
    return float(np.percentile(np.array(values) * 1e3, pct))


def recall(found: Sequence[Sequence[str]], truth: Sequence[Sequence[str]]) -> float:
    hits = sum(len(set(f) & set(t)) for f, t in zip(found, truth))
    return hits / max(1, sum(len(t) for t in truth))


def latency(n: int, n_queries: int, local_queries: int, tmp: Path) -> dict[str, float]:
    x = unit_vectors(n, seed=n)
    queries = unit_vectors(n_queries, seed=7)
    rng = random.Random(1)
    filters = [{"app": rng.choice(APPS), "user_id": rng.choice(USERS)} for _ in range(n_queries)]
    row: dict[str, float] = {"points": n}

    edge_dir = tmp / f"edge-{n}"
    edge = EdgeStore(edge_dir, auto_optimize=False)
    t = time.perf_counter()
    load(edge, x)
    row["edge_load_s"] = time.perf_counter() - t
    t = time.perf_counter()
    edge.optimize("notes")
    row["edge_optimize_s"] = time.perf_counter() - t
    log(f"{n}: edge {edge.stats('notes')}")
    edge.close()
    t = time.perf_counter()
    edge = EdgeStore(edge_dir)
    edge.count("notes")
    row["edge_reopen_s"] = time.perf_counter() - t
    sqlite = SqliteVecStore(tmp / f"sqlite-{n}")
    t = time.perf_counter()
    load(sqlite, x)
    row["sqlite_load_s"] = time.perf_counter() - t
    timed_queries(edge, queries[:5], filters[:5])  # warm-up
    timed_queries(sqlite, queries[:5], filters[:5])
    # Interleaved, one query each in turn, so both see the same moments of a noisy machine.
    edge_times, edge_ids, sqlite_times, sqlite_ids = [], [], [], []
    for i in range(n_queries):
        for store, times, found in ((edge, edge_times, edge_ids), (sqlite, sqlite_times, sqlite_ids)):
            spent, ids = timed_queries(store, queries[i:i + 1], filters[i:i + 1])
            times.extend(spent)
            found.extend(ids)
    edge.close()
    sqlite.close()
    log(f"{n}: edge load {row['edge_load_s']:.1f}s optimize {row['edge_optimize_s']:.1f}s p50 {ms(edge_times, 50):.2f} ms;"
        f" sqlite-vec load {row['sqlite_load_s']:.1f}s p50 {ms(sqlite_times, 50):.2f} ms")

    local = QdrantServerStore(path=str(tmp / f"local-{n}"))
    t = time.perf_counter()
    load(local, x)
    row["local_load_s"] = time.perf_counter() - t
    k = min(local_queries, n_queries)
    local_times, local_ids = timed_queries(local, queries[:k], filters[:k])
    local.close()
    log(f"{n}: local load {row['local_load_s']:.1f}s p50 {ms(local_times, 50):.1f} ms over {k} queries")

    row.update(
        edge_p50=ms(edge_times, 50), edge_p95=ms(edge_times, 95),
        local_p50=ms(local_times, 50), local_p95=ms(local_times, 95), local_queries=k,
        ratio_p50=ms(local_times, 50) / ms(edge_times, 50),
        recall_random=recall(edge_ids[:k], local_ids),
        sqlite_p50=ms(sqlite_times, 50), sqlite_p95=ms(sqlite_times, 95),
        recall_sqlite=recall(sqlite_ids[:k], local_ids),
    )
    return row


SUBJECTS = ["Apple", "Microsoft", "Tesla", "the central bank", "our gardening club", "the football team",
            "my neighbour", "the city council", "a local bakery", "the research group", "the hospital",
            "the airline", "a startup in Lisbon", "the school board", "the orchestra"]
VERBS = ["announced", "reported", "postponed", "celebrated", "criticised", "reviewed", "planned",
         "cancelled", "praised", "investigated", "published", "discussed"]
OBJECTS = ["quarterly earnings", "a new product line", "layoffs", "a charity concert", "interest rates",
           "the harvest festival", "a data breach", "record ticket sales", "a merger", "new opening hours",
           "a vaccination campaign", "delayed flights", "a tomato blight", "exam results", "a tax reform"]
CONTEXTS = ["after a difficult year", "despite heavy rain", "ahead of the holidays", "in a short statement",
            "to the surprise of analysts", "at the annual meeting", "on social media", "last Tuesday",
            "during the summer", "with little explanation"]


def sentences(n: int, seed: int, exclude: set[str] = frozenset()) -> list[str]:  # type: ignore[assignment]
    rng = random.Random(seed)
    out: list[str] = []
    seen = set(exclude)
    while len(out) < n:
        s = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(CONTEXTS)}."
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def real_recall(n_docs: int, n_queries: int, tmp: Path) -> dict[str, float]:
    model_dir = prepare_offline_model_dir(tmp / "model")
    embedder = Embedder("sentence-transformers/all-MiniLM-L6-v2", model_path=model_dir)
    docs = sentences(n_docs, seed=11)
    questions = sentences(n_queries, seed=12, exclude=set(docs))
    t = time.perf_counter()
    x = np.array(embedder.embed(docs), dtype=np.float32)
    embed_s = time.perf_counter() - t
    q = np.array([embedder.embed_query(s) for s in questions], dtype=np.float32)
    log(f"embedded {n_docs} sentences in {embed_s:.1f}s ({n_docs / embed_s:.0f}/s)")

    # A 1,000 KB threshold (about 650 vectors) makes sure the HNSW graph is built and used.
    store = EdgeStore(tmp / "edge-real", auto_optimize=False, indexing_threshold_kb=1000)
    store.ensure_collection("notes", DIM, FIELDS)
    store.upsert("notes", [Point(str(i), x[i].tolist(), payload(i)) for i in range(n_docs)])
    store.optimize("notes")
    stats = store.stats("notes")
    log(f"real embeddings: {stats}")
    rng = random.Random(3)
    filters = [{"app": rng.choice(APPS), "user_id": rng.choice(USERS)} for _ in range(n_queries)]

    scores = q @ x.T
    exact = [[str(i) for i in np.argsort(-row)[:10]] for row in scores]
    _, found = timed_queries(store, q, [{}] * n_queries)
    exact_f = []
    for row, must in zip(scores, filters):
        allowed = np.array([payload(i)["app"] == must["app"] and payload(i)["user_id"] == must["user_id"] for i in range(n_docs)])
        masked = np.where(allowed, row, -np.inf)
        exact_f.append([str(i) for i in np.argsort(-masked)[:10] if np.isfinite(masked[i])])
    _, found_f = timed_queries(store, q, filters)
    store.close()
    return {"docs": n_docs, "queries": n_queries, "embed_per_s": n_docs / embed_s,
            "recall": recall(found, exact), "recall_filtered": recall(found_f, exact_f),
            "indexed": stats["indexed_vectors"]}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", default="10000,100000", help="comma-separated collection sizes")
    parser.add_argument("--queries", type=int, default=200, help="filtered queries per size (EdgeStore)")
    parser.add_argument("--local-queries", type=int, default=30, help="queries answered by local mode (slow)")
    parser.add_argument("--sentences", type=int, default=3000, help="real sentences for recall@10")
    parser.add_argument("--recall-queries", type=int, default=200)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.points.split(",") if s.strip()]
    tmp = Path(tempfile.mkdtemp(prefix="timber-bench-vectors-"))
    started = time.perf_counter()
    try:
        rows = [latency(n, args.queries, args.local_queries, tmp) for n in sizes]
        real = real_recall(args.sentences, args.recall_queries, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print("### Filtered search latency (top 10, filter app + user_id, 1/20 of points match)\n")
    print("| points | SqliteVecStore (default) p50 | p95 | EdgeStore p50 | p95 | local mode p50 | p95 |"
          " sqlite-vec / edge (p50) | recall@10 vs exact: sqlite-vec | EdgeStore |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['points']:,} | {r['sqlite_p50']:.2f} ms | {r['sqlite_p95']:.2f} ms | {r['edge_p50']:.2f} ms |"
              f" {r['edge_p95']:.2f} ms | {r['local_p50']:.1f} ms | {r['local_p95']:.1f} ms |"
              f" {r['sqlite_p50'] / r['edge_p50']:.2f}x | {r['recall_sqlite']:.3f} | {r['recall_random']:.3f} |")
    print(f"\nSqliteVecStore and EdgeStore: {args.queries} queries per size, interleaved; local mode (exact, the"
          f" recall reference): the first {rows[0]['local_queries']} of them.\n")
    print("### Loading (through the store interface, batches of 2,000)\n")
    print("| points | SqliteVecStore upsert | EdgeStore upsert | EdgeStore optimize (HNSW build) | EdgeStore reopen |"
          " local mode upsert |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['points']:,} | {r['sqlite_load_s']:.1f} s | {r['edge_load_s']:.1f} s | {r['edge_optimize_s']:.1f} s |"
              f" {r['edge_reopen_s']:.2f} s | {r['local_load_s']:.1f} s |")
    print("\n### Recall@10 on real embeddings (EdgeStore HNSW vs exact numpy search)\n")
    print("| sentences | queries | recall@10 unfiltered | recall@10 filtered app + user_id | embedding speed |")
    print("|---:|---:|---:|---:|---:|")
    print(f"| {real['docs']:,} | {real['queries']} | {real['recall']:.3f} | {real['recall_filtered']:.3f} |"
          f" {real['embed_per_s']:.0f} sentences/s |")
    print(f"\nHNSW graph covered {real['indexed']:,} of {real['docs']:,} vectors.")
    print(f"\nTotal benchmark time: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
