"""Tests of the long-term memory (embodia.memory.ltm)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embodia.memory import ltm as ltm_module
from embodia.memory.ltm import NAMESPACES, LongTermMemory, LTMConfig


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _clustered(rng: np.random.Generator, n: int, n_queries: int, dim: int = 64, clusters: int = 100):
    """Keys (n, dim) and in-distribution queries (n_queries, dim): gaussian clusters, unit norm."""
    centres = rng.standard_normal((clusters, dim))
    keys = centres[rng.integers(0, clusters, n)] + 0.5 * rng.standard_normal((n, dim))
    queries = centres[rng.integers(0, clusters, n_queries)] + 0.5 * rng.standard_normal((n_queries, dim))
    return _unit(keys), _unit(queries)


def _tokens_for(ids: np.ndarray, token_dim: int, version: float = 0.0) -> np.ndarray:
    """Tokens that encode their id (and a version), so a hit's token can be checked against its id."""
    return np.repeat((ids.astype(np.float32) + version)[:, None], token_dim, axis=1)


def _recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


# ------------------------------------------------------------------------------------------------------ config
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("key_dim", 0),
        ("token_dim", 1.5),
        ("exact_below", -1),
        ("hnsw_m", 1),
        ("hnsw_ef_search", 0),
        ("max_entries", 0),
        ("evict_fraction", 0.0),
        ("evict_fraction", 1.5),
        ("stale_fraction", 1.0),
        ("top_m", True),
        ("normalize", 1),
    ],
)
def test_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        LTMConfig(**{field: value})


# ---------------------------------------------------------------------------------------------------- capacity
def test_100k_writes_evict_oldest_in_batches():
    cfg = LTMConfig(key_dim=8, token_dim=4, max_entries=60_000, evict_fraction=0.1)
    ltm = LongTermMemory(cfg)
    rng = np.random.default_rng(0)
    expected_size, expected_evicted = 0, 0
    for batch in range(100):
        ids = np.arange(batch * 1000, (batch + 1) * 1000, dtype=np.int64)
        ltm.write("leaf", ids, rng.standard_normal((1000, 8)), _tokens_for(ids, 4), step=batch)
        if expected_size + 1000 > cfg.max_entries:  # reference: evict max(excess, 10% of capacity)
            n_evict = max(expected_size + 1000 - cfg.max_entries, math.ceil(0.1 * cfg.max_entries))
            expected_size -= n_evict
            expected_evicted += n_evict
        expected_size += 1000
    assert expected_evicted > 0
    stats = ltm.stats()
    assert ltm.size("leaf") == len(ltm) == stats["entries"]["leaf"] == expected_size
    assert stats["evicted"] == {"leaf": expected_evicted, "node": 0}
    assert stats["writes"] == 100_000
    assert stats["dead_rows"]["leaf"] <= cfg.stale_fraction * (expected_size + stats["dead_rows"]["leaf"])
    snap = ltm.snapshot()
    # the newest `expected_size` ids survive, in write order; every older one is gone
    np.testing.assert_array_equal(snap["leaf/ids"], np.arange(100_000 - expected_size, 100_000))
    np.testing.assert_array_equal(snap["leaf/tokens"][:, 0], snap["leaf/ids"].astype(np.float32))
    # searching with the newest and an evicted entry's key finds the former and never the latter
    hits = ltm.search(snap["leaf/keys"][-5:], m=1)
    np.testing.assert_array_equal(hits.ids[:, 0], snap["leaf/ids"][-5:])
    assert hits.ids.min() >= 100_000 - expected_size


def test_evicts_by_last_write_step_and_refreshes_rewritten_ids():
    ltm = LongTermMemory(LTMConfig(key_dim=4, token_dim=2, max_entries=4, evict_fraction=0.5))
    rng = np.random.default_rng(1)
    for i in range(4):
        ltm.write("node", np.array([i]), rng.standard_normal((1, 4)), np.zeros((1, 2)), step=i)
    ltm.write("node", np.array([0]), rng.standard_normal((1, 4)), np.ones((1, 2)), step=10)  # refresh id 0
    ltm.write("node", np.array([9]), rng.standard_normal((1, 4)), np.zeros((1, 2)), step=11)  # evicts 1 and 2
    assert sorted(ltm.snapshot()["node/ids"].tolist()) == [0, 3, 9]
    assert ltm.stats()["evicted"]["node"] == 2


def test_batch_larger_than_capacity_keeps_its_last_entries():
    ltm = LongTermMemory(LTMConfig(key_dim=4, token_dim=2, max_entries=10))
    ids = np.arange(25)
    ltm.write("leaf", ids, np.random.default_rng(2).standard_normal((25, 4)), _tokens_for(ids, 2), step=0)
    assert ltm.size("leaf") == 10
    assert ltm.stats()["evicted"]["leaf"] == 15
    np.testing.assert_array_equal(ltm.snapshot()["leaf/ids"], np.arange(15, 25))


# ------------------------------------------------------------------------------------------------------ recall
@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_recall_at_3_against_brute_force(kind):
    rng = np.random.default_rng(3)
    keys, queries = _clustered(rng, 20_000, 200)
    exact_below = 100_000 if kind == "flat" else 1000
    ltm = LongTermMemory(LTMConfig(key_dim=64, token_dim=4, exact_below=exact_below))
    ids = np.arange(20_000, dtype=np.int64) * 7 + 3  # ids are not rows
    for start in range(0, 20_000, 2000):
        sl = slice(start, start + 2000)
        ltm.write("leaf", ids[sl], keys[sl], _tokens_for(ids[sl], 4), step=start)
    assert ltm.stats()["index_kind"]["leaf"] == kind
    truth = ids[np.argsort(-(queries @ keys.T), axis=1)[:, :3]]
    hits = ltm.search(queries, m=3)
    recall = _recall_at(hits.ids, truth)
    assert recall >= 0.95, recall
    assert np.all(np.diff(hits.scores, axis=1) <= 0)
    np.testing.assert_array_equal(hits.tokens[:, :, 0], hits.ids.astype(np.float32))
    # scores are the cosine similarities of query and returned key
    rows = (hits.ids - 3) // 7
    np.testing.assert_allclose(hits.scores, np.einsum("qd,qmd->qm", queries, keys[rows]), atol=1e-5)


def test_hnsw_never_returns_stale_rows_after_replacements():
    rng = np.random.default_rng(4)
    keys, queries = _clustered(rng, 5000, 200)
    ltm = LongTermMemory(LTMConfig(key_dim=64, token_dim=4, exact_below=1000, stale_fraction=0.5))
    ids = np.arange(5000)
    ltm.write("leaf", ids, keys, _tokens_for(ids, 4), step=0)
    moved = rng.choice(5000, 2000, replace=False)  # 2000 dead rows out of 7000 (< stale_fraction: no rebuild)
    new_keys = _unit(rng.standard_normal((2000, 64)))
    keys[moved] = new_keys
    ltm.write("leaf", ids[moved], new_keys, _tokens_for(ids[moved], 4, version=0.5), step=1)
    stats = ltm.stats()
    assert stats["index_kind"]["leaf"] == "hnsw"
    assert stats["dead_rows"]["leaf"] == 2000
    assert ltm.size("leaf") == 5000
    # query with the old keys of moved entries too: each hit's score must match its *current* key
    old_queries = np.concatenate([queries, _unit(ltm.snapshot()["leaf/keys"][:100])])
    hits = ltm.search(old_queries, m=3)
    assert np.all(hits.ids >= 0)
    np.testing.assert_allclose(hits.scores, np.einsum("qd,qmd->qm", old_queries, keys[hits.ids]), atol=1e-5)
    versions = hits.tokens[:, :, 0] - hits.ids
    np.testing.assert_array_equal(versions, np.where(np.isin(hits.ids, moved), 0.5, 0.0))
    truth = np.argsort(-(queries @ keys.T), axis=1)[:, :3]
    assert _recall_at(hits.ids[:200], truth) >= 0.95


@pytest.mark.parametrize("exact_below", [0, 100_000])
def test_search_fills_m_hits_when_dead_rows_crowd_the_query(exact_below):
    rng = np.random.default_rng(11)
    cfg = LTMConfig(key_dim=16, token_dim=1, exact_below=exact_below, stale_fraction=0.9)
    ltm = LongTermMemory(cfg)
    keys = _unit(rng.standard_normal((100, 16)))
    ltm.write("leaf", np.arange(100), keys, np.zeros((100, 1)), step=0)
    base = _unit(rng.standard_normal(16))
    for step in range(1, 400):  # id 7 rewritten next to `base` 399 times: 398 dead rows crowd that spot (+1 far)
        key = _unit(base + 0.01 * rng.standard_normal(16))
        ltm.write("leaf", np.array([7]), key[None], np.full((1, 1), step), step=step)
    keys[7] = key
    assert ltm.stats()["dead_rows"]["leaf"] == 399
    hits = ltm.search(base, m=3)
    np.testing.assert_array_equal(hits.ids[0], np.argsort(-(keys @ base))[:3])
    assert hits.tokens[0, 0, 0] == 399


# ---------------------------------------------------------------------------------------------------- semantics
def test_rewrite_replaces_key_and_token():
    ltm = LongTermMemory(LTMConfig(key_dim=4, token_dim=3))
    e = np.eye(4, dtype=np.float32)
    ltm.write("leaf", np.array([5, 6]), e[:2], np.zeros((2, 3)), step=0)
    ltm.write("leaf", np.array([5]), e[2:3], np.full((1, 3), 7.0), step=1)
    assert ltm.size("leaf") == 2
    hits = ltm.search(e[2], m=1)
    assert hits.ids[0, 0] == 5
    np.testing.assert_array_equal(hits.tokens[0, 0], [7.0, 7.0, 7.0])
    assert hits.scores[0, 0] == pytest.approx(1.0)
    # the old key no longer matches id 5: e0 scores 0 against its new key e2
    hits = ltm.search(e[0], m=2)
    assert sorted(hits.ids[0].tolist()) == [5, 6]
    np.testing.assert_allclose(hits.scores[0], [0.0, 0.0], atol=1e-6)


def test_repeated_id_in_one_batch_keeps_last_occurrence():
    ltm = LongTermMemory(LTMConfig(key_dim=2, token_dim=1))
    ltm.write("leaf", np.array([1, 2, 1]), [[1, 0], [0, 1], [1, 1]], [[1.0], [2.0], [3.0]], step=0)
    assert ltm.size("leaf") == 2
    snap = ltm.snapshot()
    assert snap["leaf/ids"].tolist() == [2, 1]
    assert snap["leaf/tokens"][:, 0].tolist() == [2.0, 3.0]


def test_namespaces_are_separate():
    ltm = LongTermMemory(LTMConfig(key_dim=8, token_dim=2))
    rng = np.random.default_rng(5)
    leaf_ids, node_ids = np.arange(0, 50), np.arange(0, 100, 10) + 1000
    ltm.write("leaf", leaf_ids, rng.standard_normal((50, 8)), np.zeros((50, 2)), step=0)
    ltm.write("node", node_ids, rng.standard_normal((10, 8)), np.ones((10, 2)), step=0)
    ltm.write("node", np.array([0]), rng.standard_normal((1, 8)), np.full((1, 2), 2.0), step=0)  # id 0 in both
    assert (ltm.size("leaf"), ltm.size("node"), len(ltm)) == (50, 11, 61)
    hits = ltm.search(rng.standard_normal((20, 8)), m=11, namespaces="node")
    assert set(hits.ids.ravel().tolist()) == {*node_ids.tolist(), 0}
    assert np.all(hits.namespaces == "node")
    assert np.all(hits.tokens > 0)
    hits = ltm.search(rng.standard_normal((20, 8)), m=5, namespaces=("leaf",))
    assert np.all(hits.namespaces == "leaf")
    assert np.all(hits.tokens == 0)


def test_merged_search_ranks_across_namespaces_by_score():
    rng = np.random.default_rng(6)
    ltm = LongTermMemory(LTMConfig(key_dim=16, token_dim=2))
    leaf_keys, node_keys = _unit(rng.standard_normal((30, 16))), _unit(rng.standard_normal((30, 16)))
    ltm.write("leaf", np.arange(30), leaf_keys, np.zeros((30, 2)), step=0)
    ltm.write("node", np.arange(30), node_keys, np.ones((30, 2)), step=0)
    queries = _unit(rng.standard_normal((25, 16)))
    hits = ltm.search(queries, m=6)
    sims = np.concatenate([queries @ leaf_keys.T, queries @ node_keys.T], axis=1)  # (Q, 60)
    best = np.argsort(-sims, axis=1)[:, :6]
    np.testing.assert_allclose(hits.scores, np.take_along_axis(sims, best, axis=1), atol=1e-5)
    np.testing.assert_array_equal(hits.ids, best % 30)
    np.testing.assert_array_equal(hits.namespaces, np.where(best < 30, "leaf", "node"))
    np.testing.assert_array_equal(hits.tokens[:, :, 0], (best >= 30).astype(np.float32))
    assert set(hits.namespaces.ravel().tolist()) == {"leaf", "node"}  # the ranking really mixes them


def test_padding_when_fewer_entries_than_m():
    ltm = LongTermMemory(LTMConfig(key_dim=4, token_dim=3))
    hits = ltm.search(np.ones(4), m=3)  # empty memory
    assert hits.ids.tolist() == [[-1, -1, -1]] and np.all(np.isneginf(hits.scores))
    ltm.write("leaf", np.array([1]), [[1, 0, 0, 0]], np.ones((1, 3)), step=0)
    ltm.write("node", np.array([2]), [[0, 1, 0, 0]], np.ones((1, 3)), step=0)
    hits = ltm.search(np.array([[1, 0.5, 0, 0], [0, 1, 0, 0]]), m=5)
    assert hits.ids.shape == hits.scores.shape == hits.namespaces.shape == (2, 5)
    assert hits.tokens.shape == (2, 5, 3)
    assert hits.ids.tolist() == [[1, 2, -1, -1, -1], [2, 1, -1, -1, -1]]
    assert hits.valid.sum() == 4
    assert np.all(np.isneginf(hits.scores[:, 2:])) and np.all(np.isfinite(hits.scores[:, :2]))
    assert np.all(hits.tokens[:, 2:] == 0) and np.all(hits.namespaces[:, 2:] == "")
    assert ltm.search(np.ones(4)).ids.shape == (1, 3)  # m defaults to top_m


def test_switch_flat_to_hnsw_keeps_all_entries_searchable():
    rng = np.random.default_rng(7)
    ltm = LongTermMemory(LTMConfig(key_dim=32, token_dim=2, exact_below=500))
    keys = _unit(rng.standard_normal((1500, 32)))
    ids = np.arange(1500) + 10**15  # Morton-sized ids
    ltm.write("leaf", ids[:499], keys[:499], np.zeros((499, 2)), step=0)
    assert ltm.stats()["index_kind"]["leaf"] == "flat"
    ltm.write("leaf", ids[499:], keys[499:], np.zeros((1001, 2)), step=1)
    stats = ltm.stats()
    assert stats["index_kind"]["leaf"] == "hnsw" and stats["rebuilds"]["leaf"] == 1
    assert ltm.size("leaf") == 1500
    hits = ltm.search(keys, m=3, namespaces="leaf")
    assert np.mean(hits.ids[:, 0] == ids) >= 0.99
    assert np.all(np.any(hits.ids == ids[:, None], axis=1))


def test_hnsw_returns_to_flat_only_well_below_threshold():
    rng = np.random.default_rng(8)
    ltm = LongTermMemory(LTMConfig(key_dim=8, token_dim=1, exact_below=100, max_entries=200, evict_fraction=0.9))
    ltm.write("leaf", np.arange(200), rng.standard_normal((200, 8)), np.zeros((200, 1)), step=0)
    assert ltm.stats()["index_kind"]["leaf"] == "hnsw"
    ltm.write("leaf", np.array([500]), rng.standard_normal((1, 8)), np.zeros((1, 1)), step=1)  # evicts 180
    stats = ltm.stats()
    assert ltm.size("leaf") == 21 and stats["evicted"]["leaf"] == 180
    assert stats["index_kind"]["leaf"] == "flat" and stats["dead_rows"]["leaf"] == 0  # compacted: 21 < 100 // 2
    assert set(ltm.search(rng.standard_normal(8), m=30).ids[0].tolist()) == {*range(180, 200), 500, -1}


@pytest.mark.parametrize("chunk", [7, None])
def test_compaction_after_many_replacements_keeps_results_exact(chunk, monkeypatch):
    if chunk is not None:  # compact in many small chunks, as a large namespace does
        monkeypatch.setattr(ltm_module, "_COMPACT_CHUNK", chunk)
    rng = np.random.default_rng(9)
    ltm = LongTermMemory(LTMConfig(key_dim=16, token_dim=1))
    keys = _unit(rng.standard_normal((300, 16)))
    last_step = np.zeros(300, np.int64)
    ltm.write("node", np.arange(300), keys, np.zeros((300, 1)), step=0)
    for step in range(1, 40):  # rewrite 30 ids per step: dead rows pile up and are compacted away
        moved = rng.choice(300, 30, replace=False)
        keys[moved] = _unit(rng.standard_normal((30, 16)))
        last_step[moved] = step
        ltm.write("node", moved, keys[moved], np.full((30, 1), step), step=step)
        stats = ltm.stats()
        assert stats["dead_rows"]["node"] <= 0.25 * (300 + stats["dead_rows"]["node"]) + 30
    assert ltm.stats()["rebuilds"]["node"] > 0
    queries = _unit(rng.standard_normal((50, 16)))
    hits = ltm.search(queries, m=4)
    np.testing.assert_array_equal(hits.ids, np.argsort(-(queries @ keys.T), axis=1)[:, :4])
    np.testing.assert_array_equal(hits.tokens[:, :, 0], last_step[hits.ids])
    snap = ltm.snapshot()
    assert sorted(snap["node/ids"].tolist()) == list(range(300))
    np.testing.assert_array_equal(snap["node/steps"], last_step[snap["node/ids"]])
    np.testing.assert_allclose(snap["node/keys"], keys[snap["node/ids"]], atol=1e-6)
    assert np.all(np.diff(snap["node/steps"]) >= 0)  # write order


def test_snapshot_restore_round_trip_and_stats():
    rng = np.random.default_rng(10)
    ltm = LongTermMemory(LTMConfig(key_dim=8, token_dim=4))
    ltm.write("leaf", np.arange(20), rng.standard_normal((20, 8)), rng.standard_normal((20, 4)), step=3)
    ltm.write("node", np.arange(5), rng.standard_normal((5, 8)), rng.standard_normal((5, 4)), step=4)
    queries = rng.standard_normal((10, 8))
    before = ltm.search(queries, m=4)
    stats = ltm.stats()
    assert stats["writes"] == 25 and stats["queries"] == 10 and stats["bytes"] > 25 * 4 * (8 + 4)
    snap = ltm.snapshot()
    assert set(snap) == {f"{ns}/{field}" for ns in NAMESPACES for field in ("ids", "keys", "tokens", "steps")}
    assert snap["node/steps"].tolist() == [4] * 5
    other = LongTermMemory(LTMConfig(key_dim=8, token_dim=4))
    other.restore(snap)
    after = other.search(queries, m=4)
    np.testing.assert_array_equal(after.ids, before.ids)
    np.testing.assert_array_equal(after.tokens, before.tokens)
    np.testing.assert_array_equal(after.namespaces, before.namespaces)
    ltm.reset()
    assert len(ltm) == 0 and ltm.stats()["writes"] == 0


# --------------------------------------------------------------------------------------------------- bad input
def test_bad_input_is_rejected_with_a_clear_message():
    ltm = LongTermMemory(LTMConfig(key_dim=64, token_dim=768))
    ids, keys, tokens = np.arange(2), np.zeros((2, 64)), np.zeros((2, 768))
    with pytest.raises(ValueError, match=r"keys must have shape \(n, 64\)"):
        ltm.write("leaf", ids, np.zeros((2, 32)), tokens, step=0)
    with pytest.raises(ValueError, match=r"tokens must have shape \(n, 768\)"):
        ltm.write("leaf", ids, keys, np.zeros((2, 384)), step=0)
    with pytest.raises(ValueError, match="n = 3 ids"):
        ltm.write("leaf", np.arange(3), keys, tokens, step=0)
    bad = keys.copy()
    bad[1, 5] = np.nan
    with pytest.raises(ValueError, match="keys must be finite"):
        ltm.write("leaf", ids, bad, tokens, step=0)
    bad = tokens.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="tokens must be finite"):
        ltm.write("leaf", ids, keys, bad, step=0)
    with pytest.raises(ValueError, match="unknown namespace 'room'"):
        ltm.write("room", ids, keys, tokens, step=0)
    with pytest.raises(ValueError, match="ids must be >= 0"):
        ltm.write("leaf", np.array([0, -1]), keys, tokens, step=0)
    with pytest.raises(ValueError, match="ids must be integers"):
        ltm.write("leaf", np.array([0.0, 1.0]), keys, tokens, step=0)
    with pytest.raises(ValueError, match="ids must be < 2"):
        ltm.write("leaf", np.array([0, 2**64 - 1], np.uint64), keys, tokens, step=0)
    with pytest.raises(ValueError, match=r"ids must have shape \(n,\)"):
        ltm.write("leaf", ids[None], keys, tokens, step=0)
    with pytest.raises(ValueError, match="step must be an integer"):
        ltm.write("leaf", ids, keys, tokens, step=1.5)
    assert len(ltm) == 0 and ltm.stats()["writes"] == 0  # nothing half-written
    with pytest.raises(ValueError, match=r"query must have shape \(64,\) or \(Q, 64\)"):
        ltm.search(np.zeros(65))
    with pytest.raises(ValueError, match="query must be finite"):
        ltm.search(np.full(64, np.nan))
    with pytest.raises(ValueError, match="unknown namespace 'leaves'"):
        ltm.search(np.zeros(64), namespaces=("leaf", "leaves"))
    with pytest.raises(ValueError, match="at least one namespace"):
        ltm.search(np.zeros(64), namespaces=())
    with pytest.raises(ValueError, match="m must be an integer >= 1"):
        ltm.search(np.zeros(64), m=0)
    with pytest.raises(ValueError, match="unknown namespace"):
        ltm.size("edge")


# ------------------------------------------------------------------------------------------ reference model
_write_ops = st.lists(
    st.tuples(
        st.sampled_from(NAMESPACES),
        st.lists(st.integers(0, 15), min_size=0, max_size=8),  # ids (repeats allowed)
        st.integers(0, 5),  # step
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=_write_ops, exact_below=st.sampled_from([0, 5, 1000]), seed=st.integers(0, 2**16))
def test_matches_a_reference_model(ops, exact_below, seed):
    rng = np.random.default_rng(seed)
    cfg = LTMConfig(key_dim=4, token_dim=2, exact_below=exact_below, max_entries=6, evict_fraction=0.34)
    ltm = LongTermMemory(cfg)
    model = {ns: {} for ns in NAMESPACES}  # id -> (key, token, step, write sequence number)
    evicted = dict.fromkeys(NAMESPACES, 0)
    seq = 0
    for ns, id_list, step in ops:
        n = len(id_list)
        keys, tokens = rng.standard_normal((n, 4)), rng.standard_normal((n, 2))
        ltm.write(ns, np.array(id_list, np.int64), keys, tokens, step=step)
        batch = {}
        for i, id_ in enumerate(id_list):  # last occurrence wins, in the order of those last occurrences
            batch.pop(id_, None)
            batch[id_] = i
        entries = model[ns]
        for id_ in batch:
            entries.pop(id_, None)
        items = list(batch.items())
        if len(items) > cfg.max_entries:
            evicted[ns] += len(items) - cfg.max_entries
            items = items[-cfg.max_entries :]
        excess = len(entries) + len(items) - cfg.max_entries
        if excess > 0:
            n_evict = min(len(entries), max(excess, math.ceil(cfg.evict_fraction * cfg.max_entries)))
            for id_ in sorted(entries, key=lambda k: (entries[k][2], entries[k][3]))[:n_evict]:
                del entries[id_]
            evicted[ns] += n_evict
        for id_, i in items:
            entries[id_] = (keys[i] / np.linalg.norm(keys[i]), tokens[i], step, seq)
            seq += 1
    stats = ltm.stats()
    assert stats["evicted"] == evicted
    snap = ltm.snapshot()
    for ns in NAMESPACES:
        entries = model[ns]
        order = sorted(entries, key=lambda k: entries[k][3])
        assert snap[f"{ns}/ids"].tolist() == order
        assert snap[f"{ns}/steps"].tolist() == [entries[k][2] for k in order]
        expected_tokens = np.array([entries[k][1] for k in order]).reshape(-1, 2)
        np.testing.assert_allclose(snap[f"{ns}/tokens"], expected_tokens, atol=1e-6)
    all_keys = [(ns, id_, e[0]) for ns in NAMESPACES for id_, e in model[ns].items()]
    queries = rng.standard_normal((3, 4))
    hits = ltm.search(queries, m=4)
    n_hits = min(4, len(all_keys))
    assert np.all(hits.valid[:, :n_hits]) and not np.any(hits.valid[:, n_hits:])
    for q, (hit_ids, hit_ns, hit_scores) in enumerate(zip(hits.ids, hits.namespaces, hits.scores, strict=True)):
        sims = sorted((float(_unit(queries[q]) @ k) for _, _, k in all_keys), reverse=True)[:n_hits]
        np.testing.assert_allclose(hit_scores[:n_hits], sims, atol=1e-5)
        for j in range(n_hits):  # each hit is a live entry whose current key gives that score
            key = model[str(hit_ns[j])][int(hit_ids[j])][0]
            assert float(_unit(queries[q]) @ key) == pytest.approx(float(hit_scores[j]), abs=1e-5)


def test_hnsw_many_hits_beyond_ef_search():
    rng = np.random.default_rng(12)
    keys, queries = _clustered(rng, 3000, 20, dim=32)
    ltm = LongTermMemory(LTMConfig(key_dim=32, token_dim=1, exact_below=0, hnsw_ef_search=16))
    ltm.write("leaf", np.arange(3000), keys, np.zeros((3000, 1)), step=0)
    hits = ltm.search(queries, m=60)
    assert np.all(hits.valid)
    assert _recall_at(hits.ids, np.argsort(-(queries @ keys.T), axis=1)[:, :60]) >= 0.95
