"""Tests for the Mem4Nav short-term memory: FLRU eviction vs LRU/LFU reference models, capacity, retrieval."""

from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from embodia.memory.stm import ShortTermMemory, STMConfig, STMHits

D = 16
N_KEYS = 10
ORIGIN = np.zeros(3)


def one_hot(key: int) -> np.ndarray:
    v = np.zeros(D)
    v[key] = 1.0
    return v


def key_position(key: int) -> np.ndarray:
    return np.array([key, -key, 0.5 * key], dtype=np.float64)


# An operation: ("w", key) writes `key`; ("r", key) retrieves with key's embedding over the whole memory, k = 1.
OPS = st.lists(st.tuples(st.sampled_from(["w", "r"]), st.integers(0, N_KEYS - 1)), min_size=1, max_size=60)


@settings(max_examples=150, deadline=None)
@given(capacity=st.integers(1, 6), ops=OPS)
def test_lam0_evicts_like_lru_reference(capacity, ops):
    stm = ShortTermMemory(STMConfig(capacity=capacity, embedding_dim=D, lam=0.0))
    ref: OrderedDict[int, None] = OrderedDict()
    for step, (op, key) in enumerate(ops):
        if op == "w":
            stm.write(key, 0, key_position(key), ORIGIN, one_hot(key), step)
            if key in ref:
                ref.move_to_end(key)
            else:
                if len(ref) == capacity:
                    ref.popitem(last=False)
                ref[key] = None
        else:
            hits = stm.retrieve(np.zeros(3), one_hot(key), step, radius=1e6, k=1)
            if key in ref:
                assert hits.keys.tolist() == [key]
            assert len(hits) == min(1, len(ref))
            for hit in hits.keys.tolist():
                ref.move_to_end(hit)
        assert sorted(stm.keys().tolist()) == sorted(ref)


@settings(max_examples=150, deadline=None)
@given(
    capacity=st.integers(1, 6),
    ops=st.lists(
        st.tuples(st.sampled_from(["w", "r"]), st.integers(0, N_KEYS - 1), st.integers(1, 3), st.integers(0, 1000)),
        min_size=1,
        max_size=60,
    ),
)
def test_lam1_evicts_like_lfu_reference_with_oldest_insertion_ties(capacity, ops):
    stm = ShortTermMemory(STMConfig(capacity=capacity, embedding_dim=D, lam=1.0))
    ref: dict[int, list[int]] = {}  # key -> [freq, insertion number]
    inserted = 0
    for op, key, k, step in ops:  # steps in any order: LFU ignores recency
        if op == "w":
            stm.write(key, 0, key_position(key), ORIGIN, one_hot(key), step)
            if key in ref:
                ref[key][0] += 1
            else:
                if len(ref) == capacity:
                    del ref[min(ref, key=lambda q: tuple(ref[q]))]
                ref[key] = [1, inserted]
                inserted += 1
        else:
            hits = stm.retrieve(np.zeros(3), one_hot(key), step, radius=1e6, k=k)
            assert len(hits) == min(k, len(ref))
            for hit in hits.keys.tolist():
                ref[hit][0] += 1
        assert sorted(stm.keys().tolist()) == sorted(ref)
        snap = stm.snapshot()
        freqs = dict(zip(snap["keys"].tolist(), snap["freq"].tolist(), strict=True))
        assert freqs == {q: f for q, (f, _) in ref.items()}


@settings(max_examples=150, deadline=None)
@given(
    capacity=st.integers(1, 8),
    lam=st.floats(0.0, 1.0),
    writes=st.lists(st.tuples(st.integers(0, 30), st.integers(0, 50)), min_size=1, max_size=80),
)
def test_capacity_never_exceeded(capacity, lam, writes):
    stm = ShortTermMemory(STMConfig(capacity=capacity, embedding_dim=D, lam=lam))
    seen: set[int] = set()
    for key, step in writes:
        slot = stm.write(key, key % 3, key_position(key), ORIGIN, one_hot(key % D), step)
        seen.add(key)
        assert 0 <= slot < capacity
        assert len(stm) == min(capacity, len(seen)) <= capacity
        keys = stm.keys().tolist()
        assert len(set(keys)) == len(keys)
        assert key in keys and stm.slot_of(key) == slot  # the key just written is never its own victim
    stats = stm.stats()
    assert stats["entries"] == len(stm) and stats["capacity"] == capacity


def test_flru_mixed_score_hand_computed():
    # lam = 0.5: score = 0.5 * freq - 0.5 * (t_now - last_access).
    stm = ShortTermMemory(STMConfig(capacity=2, embedding_dim=D, lam=0.5))
    stm.write(0, 0, ORIGIN, ORIGIN, one_hot(0), 0)
    stm.write(1, 0, ORIGIN, ORIGIN, one_hot(1), 1)
    stm.write(0, 0, ORIGIN, ORIGIN, one_hot(0), 2)  # key 0: freq 2, last 2
    stm.write(0, 0, ORIGIN, ORIGIN, one_hot(0), 3)  # key 0: freq 3, last 3
    stm.write(1, 0, ORIGIN, ORIGIN, one_hot(1), 6)  # key 1: freq 2, last 6
    # At t = 8: key 0 -> 1.5 - 2.5 = -1.0; key 1 -> 1.0 - 1.0 = 0.0, so key 0 goes despite its higher count.
    np.testing.assert_array_equal(stm.scores(8), [-1.0, 0.0])
    stm.write(2, 0, ORIGIN, ORIGIN, one_hot(2), 8)
    assert sorted(stm.keys().tolist()) == [1, 2]
    # At t = 9: key 1 (freq 2, last 6) -> 1.0 - 1.5 = -0.5; key 2 (freq 1, last 8) -> 0.5 - 0.5 = 0.0.
    stm.write(3, 0, ORIGIN, ORIGIN, one_hot(3), 9)
    assert sorted(stm.keys().tolist()) == [2, 3]
    assert stm.stats()["evictions"] == 2


def test_lam0_tie_goes_to_oldest_insertion():
    stm = ShortTermMemory(STMConfig(capacity=3, embedding_dim=D, lam=0.0))
    for key in (5, 3, 7):
        stm.write(key, 0, ORIGIN, ORIGIN, one_hot(key), 4)  # same step: equal scores
    stm.write(9, 0, ORIGIN, ORIGIN, one_hot(9), 4)
    assert sorted(stm.keys().tolist()) == [3, 7, 9]


def test_updating_existing_key_does_not_evict():
    stm = ShortTermMemory(STMConfig(capacity=3, embedding_dim=D))
    for key in range(3):
        stm.write(key, key, key_position(key), ORIGIN, one_hot(key), key)
    slot = stm.slot_of(1)
    new_emb = one_hot(1) + one_hot(4)
    anchor = np.array([1.0, 1.0, 1.0])
    assert stm.write(1, 7, np.array([2.0, 3.0, 4.0]), anchor, new_emb, 10) == slot
    assert len(stm) == 3 and stm.stats()["evictions"] == 0
    assert sorted(stm.keys().tolist()) == [0, 1, 2]
    snap = stm.snapshot()
    np.testing.assert_array_equal(snap["embeddings"][slot], new_emb.astype(np.float32))
    np.testing.assert_array_equal(snap["rel_positions"][slot], [1.0, 2.0, 3.0])
    assert snap["class_ids"][slot] == 7 and snap["freq"][slot] == 2 and snap["last_access"][slot] == 10


@pytest.mark.parametrize("seed", range(8))
def test_retrieval_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n, d = 40, 12
    stm = ShortTermMemory(STMConfig(capacity=64, embedding_dim=d, radius=3.0, top_k=3))
    positions = rng.uniform(-4, 4, size=(n, 3))
    anchors = rng.uniform(-1, 1, size=(n, 3))
    embeddings = rng.normal(size=(n, d))
    for i in range(n):
        stm.write(100 + i, i % 4, positions[i], anchors[i], embeddings[i], i)
    query_rel, query_emb = positions[0] - anchors[0] + rng.uniform(-1, 1, size=3), rng.normal(size=d)
    radius, k = float(rng.uniform(2.0, 5.0)), int(rng.integers(1, 6))
    hits = stm.retrieve(query_rel, query_emb, 50, radius=radius, k=k)

    rel = positions - anchors
    stored = embeddings.astype(np.float32).astype(np.float64)
    inside = np.flatnonzero(np.linalg.norm(rel - query_rel, axis=1) <= radius)
    cos = stored[inside] @ query_emb / (np.linalg.norm(stored[inside], axis=1) * np.linalg.norm(query_emb))
    best = inside[np.argsort(-cos)[:k]]
    assert len(inside) > 0  # the query sits near entry 0
    assert hits.keys.tolist() == (100 + best).tolist()
    np.testing.assert_allclose(hits.similarities, np.sort(cos)[::-1][:k], rtol=1e-9)
    np.testing.assert_allclose(hits.rel_positions, rel[best])
    np.testing.assert_array_equal(hits.class_ids, best % 4)
    np.testing.assert_array_equal(hits.embeddings, embeddings[best].astype(np.float32))
    # Hits are accessed: count + 1 and last access = query step; the rest are untouched.
    snap = stm.snapshot()
    hit_mask = np.isin(snap["keys"], hits.keys)
    assert (snap["freq"][hit_mask] == 2).all() and (snap["last_access"][hit_mask] == 50).all()
    assert (snap["freq"][~hit_mask] == 1).all() and (snap["last_access"][~hit_mask] < 50).all()
    assert stm.stats()["hits"] == 1 and stm.stats()["queries"] == 1


def test_retrieval_uses_relative_coordinates_and_default_radius():
    stm = ShortTermMemory(STMConfig(capacity=4, embedding_dim=D, radius=3.0))
    node = np.array([50.0, 20.0, 0.0])
    stm.write(1, 0, node + [2.9, 0.0, 0.0], node, one_hot(1), 0)  # p_rel = (2.9, 0, 0)
    assert stm.retrieve(np.zeros(3), one_hot(1), 1).keys.tolist() == [1]  # inside the default 3 m
    assert len(stm.retrieve(np.zeros(3), one_hot(1), 2, radius=2.8)) == 0
    assert len(stm.retrieve(node, one_hot(1), 3)) == 0  # a world-frame query misses


def test_retrieve_empty_result_shapes_and_stats():
    stm = ShortTermMemory(STMConfig(capacity=4, embedding_dim=D))
    hits = stm.retrieve(np.zeros(3), one_hot(0), 0)
    assert isinstance(hits, STMHits) and len(hits) == 0
    assert hits.rel_positions.shape == (0, 3) and hits.embeddings.shape == (0, D)
    assert hits.keys.shape == hits.similarities.shape == hits.class_ids.shape == (0,)
    assert stm.stats()["queries"] == 1 and stm.stats()["hits"] == 0


def test_snapshot_stats_and_reset():
    stm = ShortTermMemory(STMConfig(capacity=5, embedding_dim=D))
    nbytes = stm.stats()["bytes"]
    assert nbytes >= 5 * D * 4
    for key in range(7):
        stm.write(key, 0, key_position(key), ORIGIN, one_hot(key), key)
    snap = stm.snapshot()
    assert snap["keys"].shape == (5,) and snap["rel_positions"].shape == (5, 3)
    assert snap["embeddings"].shape == (5, D) and snap["embeddings"].dtype == np.float32
    assert stm.stats() == {"entries": 5, "capacity": 5, "evictions": 2, "hits": 0, "queries": 0, "bytes": nbytes}
    stm.reset()
    assert len(stm) == 0 and stm.keys().size == 0 and stm.stats()["evictions"] == 0
    assert stm.write(3, 0, ORIGIN, ORIGIN, one_hot(3), 0) == 0


NAN3 = np.array([0.0, np.nan, 0.0])
INF3 = np.array([np.inf, 0.0, 0.0])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"position": NAN3}, "position"),
        ({"position": INF3}, "position"),
        ({"position": np.zeros(2)}, r"\(3,\)"),
        ({"anchor": NAN3}, "anchor"),
        ({"embedding": np.zeros(D + 1) + 1.0}, rf"\({D},\)"),
        ({"embedding": np.full(D, np.nan)}, "embedding"),
        ({"embedding": np.full(D, -np.inf)}, "embedding"),
        ({"embedding": np.zeros(D)}, "nonzero"),
        ({"embedding": np.full(D, 1e39)}, "float32"),
        ({"position": np.full(3, 1e308), "anchor": np.full(3, -1e308)}, "overflow"),
        ({"step": -1}, "step"),
        ({"step": 1.5}, "step"),
        ({"key": True}, "key"),
        ({"key": 2.0}, "key"),
        ({"class_id": "a"}, "class_id"),
    ],
)
def test_write_rejects_bad_input(kwargs, match):
    stm = ShortTermMemory(STMConfig(capacity=2, embedding_dim=D))
    args = {"key": 1, "class_id": 0, "position": np.ones(3), "anchor": ORIGIN, "embedding": one_hot(1), "step": 0}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        stm.write(**args)
    assert len(stm) == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"query_rel": NAN3}, "query_rel"),
        ({"query_rel": np.zeros(4)}, r"\(3,\)"),
        ({"query_embedding": np.ones(D - 1)}, rf"\({D},\)"),
        ({"query_embedding": np.full(D, np.inf)}, "query_embedding"),
        ({"query_embedding": np.zeros(D)}, "nonzero"),
        ({"radius": 0.0}, "radius"),
        ({"radius": float("nan")}, "radius"),
        ({"k": 0}, "k"),
        ({"step": -3}, "step"),
    ],
)
def test_retrieve_rejects_bad_input(kwargs, match):
    stm = ShortTermMemory(STMConfig(capacity=2, embedding_dim=D))
    stm.write(1, 0, ORIGIN, ORIGIN, one_hot(1), 0)
    args = {"query_rel": np.zeros(3), "query_embedding": one_hot(1), "step": 1}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        stm.retrieve(**args)
    assert stm.stats()["queries"] == 0 and stm.snapshot()["freq"].tolist() == [1]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"capacity": 0},
        {"capacity": 2.0},
        {"embedding_dim": 0},
        {"lam": -0.1},
        {"lam": 1.5},
        {"lam": float("nan")},
        {"radius": 0.0},
        {"radius": float("inf")},
        {"top_k": 0},
    ],
)
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        STMConfig(**kwargs)
