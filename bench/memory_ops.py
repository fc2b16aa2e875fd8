"""Memory operations benchmark: octree, neighbour, STM, LTM and full-step timings, side by side in one run.

Octree inserts are compared with Open3D's ``convert_from_point_cloud`` and a plain dict, STM/LTM queries with
brute-force numpy; a full Mem4Nav ``update`` + ``retrieve`` step is timed at 1e4 leaves. LTM recall is reported on
two key sets: keys shaped like the memory's (a projection of ``[v ; p]``, on which the target is judged) and
isotropic Gaussian clusters in 64-d (a hard case with many near-ties, reported as is).

Targets (issue 4): octree insert >= 2 M points/s and faster than Open3D's ``convert_from_point_cloud``;
LTM query <= 0.2 ms at 1e5 entries with recall@3 >= 0.95; ``update`` + ``retrieve`` <= 2 ms per step at 1e4 leaves.

Usage: python bench/memory_ops.py [--quick]
Writes bench/results/memory_ops.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch

from embodia.memory.ltm import LongTermMemory, LTMConfig
from embodia.memory.mem4nav import Mem4NavConfig, Mem4NavMemory
from embodia.memory.octree import OctreeConfig, SparseOctree
from embodia.memory.stm import ShortTermMemory, STMConfig
from embodia.memory.tokens import MemoryTokens, TokenConfig

RESULTS = Path(__file__).parent / "results" / "memory_ops.json"


def best_of(fn, repeats: int = 3) -> float:
    """Smallest wall time of ``repeats`` calls, seconds."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def octree_inserts(n_points: int) -> list[dict]:
    """Points/s: embodia (one batch; 1e4-point batches), Open3D convert_from_point_cloud, a plain dict."""
    import open3d as o3d

    rng = np.random.default_rng(0)
    points = rng.uniform(0, 100, size=(n_points, 3))  # a 100 m cube
    classes = rng.integers(0, 17, size=n_points)
    cfg = OctreeConfig(leaf_size=100 / 2**7, depth=16, origin=(0.0, 0.0, 0.0))  # same leaves as Open3D depth 7

    def embodia_one_batch() -> None:
        SparseOctree(cfg).insert(points, classes)

    def embodia_batches() -> None:
        tree = SparseOctree(cfg)
        for i in range(0, n_points, 10_000):
            tree.insert(points[i : i + 10_000], classes[i : i + 10_000])

    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))

    def open3d_convert() -> None:
        o3d.geometry.Octree(max_depth=7).convert_from_point_cloud(pcd, size_expand=0.0)

    dict_points = points[: min(n_points, 100_000)]

    def python_dict() -> None:
        leaves: dict[tuple[int, int, int], list] = {}
        for p in dict_points:
            key = (int(p[0] // cfg.leaf_size), int(p[1] // cfg.leaf_size), int(p[2] // cfg.leaf_size))
            leaf = leaves.get(key)
            if leaf is None:
                leaves[key] = [1, p[0], p[1], p[2]]
            else:
                leaf[0] += 1
                leaf[1] += p[0]
                leaf[2] += p[1]
                leaf[3] += p[2]

    rows = []
    for name, fn, n in (
        ("embodia octree, one batch", embodia_one_batch, n_points),
        ("embodia octree, 1e4-point batches", embodia_batches, n_points),
        ("open3d Octree.convert_from_point_cloud", open3d_convert, n_points),
        ("python dict of cells", python_dict, len(dict_points)),
    ):
        seconds = best_of(fn)
        rows.append({"method": name, "points": n, "seconds": round(seconds, 4), "points_per_s": round(n / seconds)})
    return rows


def neighbour_queries(n_points: int) -> dict:
    """Latency of ``neighbours`` (26 cells) and ``radius_query`` (3 m) on a 1 m-leaf tree."""
    rng = np.random.default_rng(1)
    tree = SparseOctree(OctreeConfig(leaf_size=1.0, origin=(0.0, 0.0, 0.0)))
    tree.insert(rng.uniform(0, 100, size=(n_points, 3)))
    keys = tree.keys()[rng.integers(0, len(tree), size=500)]
    centres = rng.uniform(0, 100, size=(500, 3))
    t_nb = best_of(lambda: [tree.neighbours(int(k), 1) for k in keys]) / len(keys)
    t_r = best_of(lambda: [tree.radius_query(c, 3.0) for c in centres]) / len(centres)
    return {"leaves": len(tree), "neighbours_r1_us": round(1e6 * t_nb, 1), "radius_3m_us": round(1e6 * t_r, 1)}


def gaussian_clusters(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """Unit vectors around 100 cluster centres with isotropic noise: a hard case (many near-ties in 64-d)."""
    centres = np.random.default_rng(100).normal(size=(100, dim))
    x = centres[rng.integers(0, 100, size=n)] + 0.3 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def memory_keys(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """Keys shaped like the memory's: a linear projection of ``[v ; p]``, L2-normalised.

    ``v`` lies near one of 200 prototype embeddings (d = 128), ``p`` anywhere in a 200 x 200 x 3 m region.
    """
    fixed = np.random.default_rng(101)
    projection = fixed.normal(size=(131, dim)) / np.sqrt(131)
    prototypes = fixed.normal(size=(200, 128))
    v = prototypes[rng.integers(0, 200, size=n)] + 0.3 * rng.normal(size=(n, 128))
    p = rng.uniform([0, 0, 0], [200, 200, 3], size=(n, 3))
    x = np.concatenate([v, p], axis=1) @ projection
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


DATASETS = {"memory_keys": memory_keys, "gaussian_clusters": gaussian_clusters}


def ltm_queries(sizes: list[int], dataset: str, key_dim: int = 64, n_queries: int = 300) -> list[dict]:
    """Single-query latency and recall@3 of the LTM (flat and HNSW) beside brute-force numpy."""
    rows = []
    rng = np.random.default_rng(2)
    make = DATASETS[dataset]
    for n in sizes:
        keys = make(n, key_dim, rng)
        tokens = np.zeros((n, 8), dtype=np.float32)
        queries = make(n_queries, key_dim, rng)
        exact = np.argsort(-(queries @ keys.T), axis=1)[:, :3]  # (Q, 3) brute-force ground truth
        t0 = time.perf_counter()
        for q in queries:
            scores = keys @ q
            np.argpartition(-scores, 3)[:3]
        numpy_us = 1e6 * (time.perf_counter() - t0) / n_queries
        rows.append(
            {
                "dataset": dataset,
                "entries": n,
                "index": "numpy brute force",
                "us_per_query": round(numpy_us, 1),
                "recall_at_3": 1.0,
            }
        )
        for kind, exact_below in (("flat", 10**9), ("hnsw", 1)):
            ltm = LongTermMemory(LTMConfig(key_dim=key_dim, token_dim=8, exact_below=exact_below, max_entries=2 * n))
            t_build = time.perf_counter()
            for i in range(0, n, 50_000):
                ltm.write("leaf", np.arange(i, min(i + 50_000, n)), keys[i : i + 50_000], tokens[i : i + 50_000], 0)
            build = time.perf_counter() - t_build
            found = np.zeros((n_queries, 3), dtype=np.int64)
            t0 = time.perf_counter()
            for j, q in enumerate(queries):
                found[j] = ltm.search(q, m=3, namespaces="leaf").ids[0]
            us = 1e6 * (time.perf_counter() - t0) / n_queries
            recall = np.mean([len(set(found[j]) & set(exact[j])) / 3 for j in range(n_queries)])
            rows.append(
                {"dataset": dataset, "entries": n, "index": f"embodia LTM {kind}", "us_per_query": round(us, 1),
                 "recall_at_3": round(float(recall), 4), "build_s": round(build, 2)}
            )  # fmt: skip
    return rows


def stm_queries(sizes: list[int], dim: int = 128, n_queries: int = 300) -> list[dict]:
    """STM retrieval latency (radius filter + cosine top-3) beside the same computation in plain numpy."""
    rows = []
    rng = np.random.default_rng(3)
    for n in sizes:
        stm = ShortTermMemory(STMConfig(capacity=n, embedding_dim=dim, radius=3.0, top_k=3))
        positions = rng.uniform(-20, 20, size=(n, 3))
        embeddings = rng.normal(size=(n, dim)).astype(np.float32)
        for i in range(n):
            stm.write(i, 1, positions[i], np.zeros(3), embeddings[i], step=i)
        queries = rng.uniform(-20, 20, size=(n_queries, 3))
        q_emb = rng.normal(size=(n_queries, dim)).astype(np.float32)
        t0 = time.perf_counter()
        for q, e in zip(queries, q_emb, strict=True):
            stm.retrieve(q, e, step=n)
        stm_us = 1e6 * (time.perf_counter() - t0) / n_queries
        unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
        t0 = time.perf_counter()
        for q, e in zip(queries, q_emb, strict=True):
            near = np.flatnonzero(np.linalg.norm(positions - q, axis=1) <= 3.0)
            sims = unit[near] @ (e / np.linalg.norm(e))
            near[np.argsort(-sims)[:3]]
        numpy_us = 1e6 * (time.perf_counter() - t0) / n_queries
        rows.append({"entries": n, "stm_us_per_query": round(stm_us, 1), "numpy_us_per_query": round(numpy_us, 1)})
    return rows


def full_step(target_leaves: int, steps: int) -> dict:
    """Per-step ``update`` + ``retrieve`` with the default config, after filling the memory to ``target_leaves``."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    memory = Mem4NavMemory(Mem4NavConfig())
    d = memory.config.embed_dim
    rng = np.random.default_rng(4)

    def one_step(t: int) -> None:
        position = np.array([0.5 * t, 3.0 * np.sin(t / 50), 0.0])
        v = rng.normal(size=d)
        points = position + rng.uniform(-20, 20, size=(512, 3)) * [1, 1, 0.3]  # one 8x64 ray scan
        memory.update(v, position, points, rng.integers(0, 17, 512), (np.array([3]), position[None] + 2.0))
        memory.retrieve(v, position)

    t = 0
    while memory.stats()["leaves"] < target_leaves:
        one_step(t)
        t += 1
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        one_step(t)
        times.append(time.perf_counter() - t0)
        t += 1
    stats = memory.stats()
    return {
        "leaves": int(stats["leaves"]),
        "nodes": int(stats["nodes"]),
        "ltm_entries": int(stats["ltm_entries"]),
        "points_per_step": 512,
        "ms_per_step_median": round(1000 * statistics.median(times), 3),
        "ms_per_step_p90": round(1000 * float(np.percentile(times, 90)), 3),
        "ms_per_step_p99": round(1000 * float(np.percentile(times, 99)), 3),
        "ms_per_step_max": round(1000 * max(times), 3),
        "stm_hit_rate": round(stats["stm_hit_rate"], 3),
        "ltm_hit_rate": round(stats["ltm_hit_rate"], 3),
        "memory_bytes": int(stats["bytes"]),
    }


def token_round_trip() -> dict:
    """R's round-trip error at the paper's size (d = 384, depth 6), float64 and float32, eval mode."""
    torch.manual_seed(0)
    model = MemoryTokens(TokenConfig(embed_dim=384, depth=6)).eval()
    read, v = torch.randn(64, 384), torch.randn(64, 384)
    with torch.no_grad():
        _, v32 = model.decode(model.write(read, v))
        rel32 = float(((v32 - v).norm(dim=1) / v.norm(dim=1)).max())
        model64 = model.double()
        _, v64 = model64.decode(model64.write(read.double(), v.double()))
        abs64 = float((v64 - v.double()).abs().max())
    return {"float64_max_abs_error": abs64, "float32_max_rel_error": rel32}


def main() -> None:
    """Runs all measurements, prints tables and writes the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    n_points = 200_000 if args.quick else 1_000_000
    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]

    inserts = octree_inserts(n_points)
    print(f"{'octree insert':<42}{'points':>10}{'points/s':>14}")
    for r in inserts:
        print(f"{r['method']:<42}{r['points']:>10}{r['points_per_s']:>14,}")
    neighbours = neighbour_queries(n_points)
    print(f"\nneighbour queries on {neighbours['leaves']} leaves: neighbours(r=1) {neighbours['neighbours_r1_us']} us, "
          f"radius_query(3 m) {neighbours['radius_3m_us']} us")  # fmt: skip
    ltm = ltm_queries(sizes, "memory_keys") + ltm_queries(sizes, "gaussian_clusters")
    print(f"\n{'LTM keys':<19}{'entries':>8}  {'index':<22}{'us/query':>10}{'recall@3':>10}")
    for r in ltm:
        print(f"{r['dataset']:<19}{r['entries']:>8}  {r['index']:<22}{r['us_per_query']:>10}{r['recall_at_3']:>10}")
    stm = stm_queries(sizes)
    print(f"\n{'STM entries':<12}{'STM us/query':>14}{'numpy us/query':>16}")
    for r in stm:
        print(f"{r['entries']:<12}{r['stm_us_per_query']:>14}{r['numpy_us_per_query']:>16}")
    step = full_step(2_000 if args.quick else 10_000, 50 if args.quick else 200)
    print(f"\nfull update + retrieve at {step['leaves']} leaves, {step['nodes']} nodes, "
          f"{step['ltm_entries']} LTM entries: median {step['ms_per_step_median']} ms, "
          f"p90 {step['ms_per_step_p90']} ms, p99 {step['ms_per_step_p99']} ms, max {step['ms_per_step_max']} ms "
          "(a step that doubles the octree's storage copies it)")  # fmt: skip
    tokens = token_round_trip()
    print(f"R round trip (d=384, depth 6): float64 max abs {tokens['float64_max_abs_error']:.2e}, "
          f"float32 max rel {tokens['float32_max_rel_error']:.2e}")  # fmt: skip

    ours = next(r for r in inserts if r["method"] == "embodia octree, one batch")["points_per_s"]
    batched = next(r for r in inserts if r["method"].startswith("embodia octree, 1e4"))["points_per_s"]
    o3d_rate = next(r for r in inserts if r["method"].startswith("open3d"))["points_per_s"]
    ltm_1e5 = [
        r
        for r in ltm
        if r["dataset"] == "memory_keys" and r["entries"] == max(sizes) and r["index"].startswith("embodia")
    ]
    best_ltm = min(ltm_1e5, key=lambda r: r["us_per_query"])
    targets = {
        # Judged like for like with Open3D's one-shot conversion: one batch. The 1e4-batch rate is reported too.
        "octree_insert_ge_2M_per_s": ours >= 2_000_000,
        "octree_faster_than_open3d": ours > o3d_rate,
        "octree_batched_faster_than_open3d": batched > o3d_rate,
        "ltm_query_le_0.2ms_at_max_size_recall_ge_0.95": best_ltm["us_per_query"] <= 200
        and best_ltm["recall_at_3"] >= 0.95,
        "update_retrieve_le_2ms": step["ms_per_step_median"] <= 2.0,
    }
    print("\ntargets: " + ", ".join(f"{k}={'met' if v else 'NOT met'}" for k, v in targets.items()))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "memory_ops",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "torch_threads": 1},
        "quick": args.quick,
        "octree_insert": inserts,
        "neighbour_queries": neighbours,
        "ltm_queries": ltm,
        "stm_queries": stm,
        "full_step": step,
        "token_round_trip": tokens,
        "targets": targets,
        "not_measured": "LTM at 1e6 entries: building an HNSW index of 1e6 keys takes minutes on 2 cores",
        "ltm_target_dataset": "memory_keys",
    }
    RESULTS.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
