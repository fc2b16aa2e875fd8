"""Tests for embodia.memory.octree (sparse Morton-keyed octree, Mem4Nav §1)."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from embodia.memory.octree import (
    MORTON_BITS,
    OctreeConfig,
    SparseOctree,
    morton_decode,
    morton_encode,
    parent_key,
)

CELL = st.integers(0, 2**MORTON_BITS - 1)
CELLS = hnp.arrays(np.int64, st.tuples(st.integers(0, 50), st.just(3)), elements=CELL)


def reference_encode(cell) -> int:
    """Bit-by-bit Morton interleave in plain Python (x in bit 0, y in bit 1, z in bit 2)."""
    code = 0
    for bit in range(MORTON_BITS):
        for axis in range(3):
            code |= ((int(cell[axis]) >> bit) & 1) << (3 * bit + axis)
    return code


def make_tree(**kwargs) -> SparseOctree:
    kwargs.setdefault("origin", (0.0, 0.0, 0.0))
    return SparseOctree(OctreeConfig(**kwargs))


# ---------------------------------------------------------------------------------------------
# Morton codes


@given(CELLS)
def test_morton_round_trip(cells):
    codes = morton_encode(cells)
    assert codes.dtype == np.uint64 and codes.shape == (cells.shape[0],)
    decoded = morton_decode(codes)
    assert decoded.dtype == np.int64
    np.testing.assert_array_equal(decoded, cells)


@given(st.tuples(CELL, CELL, CELL))
def test_morton_matches_bitwise_reference(cell):
    assert int(morton_encode(np.array([cell]))[0]) == reference_encode(cell)


def test_morton_known_codes():
    cells = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1], [2, 0, 0], [0, 2, 0], [3, 3, 3]])
    np.testing.assert_array_equal(morton_encode(cells), np.array([0, 1, 2, 4, 7, 8, 16, 63], dtype=np.uint64))
    top = 2**MORTON_BITS - 1
    assert int(morton_encode(np.array([[top, top, top]]))[0]) == 2 ** (3 * MORTON_BITS) - 1
    assert int(morton_encode(np.array([[top, 0, 0]]))[0]) == int("001" * MORTON_BITS, 2)


@given(CELLS, st.integers(0, 5))
def test_parent_key_is_code_of_halved_cell(cells, levels):
    np.testing.assert_array_equal(parent_key(morton_encode(cells), levels), morton_encode(cells >> levels))


@given(hnp.arrays(np.int64, st.tuples(st.integers(0, 60), st.just(3)), elements=st.integers(0, 40), unique=False))
def test_distinct_cells_have_distinct_codes(cells):
    n_cells = len({tuple(c) for c in cells.tolist()})
    assert np.unique(morton_encode(cells)).size == n_cells


@pytest.mark.parametrize(
    "cells", [np.array([[-1, 0, 0]]), np.array([[0, 2**MORTON_BITS, 0]]), np.zeros((2, 2), int), np.zeros((1, 3))]
)
def test_morton_encode_rejects_bad_cells(cells):
    with pytest.raises(ValueError):
        morton_encode(cells)


def test_morton_decode_and_parent_reject_bad_input():
    with pytest.raises(ValueError):
        morton_decode(np.array([-1]))
    with pytest.raises(ValueError):
        morton_decode(np.array([2**63], dtype=np.uint64))
    with pytest.raises(ValueError, match="levels"):
        parent_key(np.array([8]), -1)
    assert morton_encode(np.empty((0, 3), np.int64)).shape == (0,)


# ---------------------------------------------------------------------------------------------
# config


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"leaf_size": 0.0}, "leaf_size"),
        ({"leaf_size": math.nan}, "leaf_size"),
        ({"depth": 22}, "depth"),
        ({"depth": -1}, "depth"),
        ({"depth": 2.0}, "depth"),
        ({"origin": (0.0, 0.0)}, "origin"),
        ({"origin": (0.0, math.inf, 0.0)}, "origin"),
        ({"num_classes": 0}, "num_classes"),
        ({"embedding_dim": -1}, "embedding_dim"),
    ],
)
def test_config_validation(kwargs, field):
    with pytest.raises(ValueError, match=field):
        OctreeConfig(**kwargs)


def test_config_extent():
    cfg = OctreeConfig(leaf_size=0.5, depth=10)
    assert cfg.extent == 512.0 and cfg.cells_per_axis == 1024


# ---------------------------------------------------------------------------------------------
# insertion


def test_insert_counts_centroids_histograms_match_python_dict():
    rng = np.random.default_rng(1)
    pts = rng.uniform(-3.0, 7.0, size=(3000, 3))
    cls = rng.integers(0, 5, size=3000)
    tree = make_tree(leaf_size=0.7, depth=6, origin=(-4.0, -4.0, -4.0), num_classes=5)
    keys = tree.insert(pts, cls, step=3)

    groups: dict[tuple[int, int, int], list[int]] = defaultdict(list)
    for i, p in enumerate(pts.tolist()):
        cell = tuple(math.floor((p[a] + 4.0) / 0.7) for a in range(3))
        groups[cell].append(i)
    expected_keys = sorted(reference_encode(c) for c in groups)
    assert keys.dtype == np.uint64
    assert keys.tolist() == expected_keys
    assert len(tree) == len(groups)
    np.testing.assert_array_equal(tree.keys(), keys)

    ref_keys = np.array([reference_encode(c) for c in groups], dtype=np.uint64)
    idx = list(groups.values())
    np.testing.assert_array_equal(tree.counts(ref_keys), [len(i) for i in idx])
    assert tree.counts(keys).sum() == len(pts)
    np.testing.assert_allclose(tree.centroids(ref_keys), [pts[i].mean(axis=0) for i in idx], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(tree.histograms(ref_keys), [np.bincount(cls[i], minlength=5) for i in idx])
    np.testing.assert_array_equal(tree.last_steps(keys), 3)
    # Centroids lie in their cells, whose centres come from the key alone.
    centres = tree.leaf_centres(ref_keys)
    np.testing.assert_allclose(centres, [(np.array(c) + 0.5) * 0.7 - 4.0 for c in groups], atol=1e-12)
    assert (np.abs(tree.centroids(ref_keys) - centres) <= 0.35 + 1e-12).all()
    assert tree.stats()["points_inserted"] == 3000 and tree.stats()["points_clipped"] == 0


def test_insert_without_classes_counts_class_zero():
    tree = make_tree(num_classes=4)
    keys = tree.insert(np.array([[0.5, 0.5, 0.5], [0.2, 0.1, 0.9], [1.5, 0.5, 0.5]]))
    np.testing.assert_array_equal(tree.histograms(keys), [[2, 0, 0, 0], [1, 0, 0, 0]])


def test_two_batches_equal_one_batch():
    rng = np.random.default_rng(2)
    pts = rng.uniform(0.0, 20.0, size=(2000, 3))
    cls = rng.integers(0, 17, size=2000)
    one, two = make_tree(), make_tree()
    one.insert(pts, cls)
    a = two.insert(pts[:700], cls[:700])
    b = two.insert(pts[700:], cls[700:])
    np.testing.assert_array_equal(np.union1d(a, b), one.keys())
    s1, s2 = one.snapshot(), two.snapshot()
    assert s1.keys() == s2.keys()
    for name in s1:
        np.testing.assert_allclose(s1[name], s2[name], rtol=1e-6, err_msg=name)
    assert one.stats()["leaves"] == two.stats()["leaves"]
    # Rows differ (insertion order) but the lookup is consistent.
    keys = one.keys()
    assert (two.rows(keys) >= 0).all() and np.unique(two.rows(keys)).size == keys.size


def test_storage_grows_past_initial_capacity():
    tree = make_tree(depth=8)
    cells = np.stack(np.meshgrid(*[np.arange(16)] * 3, indexing="ij"), -1).reshape(-1, 3)  # 4096 cells
    for chunk in np.array_split(cells + 0.5, 7):
        tree.insert(chunk)
    assert len(tree) == 4096
    np.testing.assert_array_equal(tree.keys(), np.sort(morton_encode(cells)))
    np.testing.assert_array_equal(tree.counts(tree.keys()), 1)
    np.testing.assert_allclose(tree.centroids(morton_encode(cells)), cells + 0.5)


def test_last_embedding_and_step_are_latest():
    tree = make_tree(embedding_dim=3)
    k1 = tree.insert(np.array([[0.5, 0.5, 0.5], [2.5, 0.5, 0.5]]), embedding=np.array([1.0, 2.0, 3.0]), step=1)
    k2 = tree.insert(np.array([[2.6, 0.4, 0.5]]), embedding=np.array([4.0, 5.0, 6.0]), step=7)
    k3 = tree.insert(np.array([[5.5, 0.5, 0.5]]), step=9)  # no embedding: stays NaN, others untouched
    np.testing.assert_array_equal(tree.embeddings(k1), [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(tree.embeddings(k2), [[4, 5, 6]])
    assert np.isnan(tree.embeddings(k3)).all()
    np.testing.assert_array_equal(tree.last_steps(np.concatenate([k1, k3])), [1, 7, 9])
    assert tree.embeddings(k1).dtype == np.float32


def test_token_slots():
    tree = make_tree()
    keys = tree.insert(np.array([[0.5, 0.5, 0.5], [3.5, 0.5, 0.5], [0.5, 9.5, 0.5]]))
    np.testing.assert_array_equal(tree.get_token_slots(keys), -1)
    tree.set_token_slots(keys[[2, 0]], [5, 11])
    np.testing.assert_array_equal(tree.get_token_slots(keys), [11, -1, 5])
    tree.set_token_slots(keys, 4)
    np.testing.assert_array_equal(tree.get_token_slots(keys), 4)
    tree.insert(np.array([[0.6, 0.6, 0.6]]))  # re-inserting keeps the slot
    assert tree.get_token_slots(keys[0])[0] == 4
    np.testing.assert_array_equal(tree.snapshot()["token_slots"], 4)
    with pytest.raises(ValueError):
        tree.set_token_slots(keys, [1, 2])
    with pytest.raises(KeyError):
        tree.set_token_slots([12345678], 1)


def test_clipped_points_are_counted_and_kept_in_boundary_cells():
    tree = make_tree(leaf_size=1.0, depth=2)  # cube [0, 4)^3
    pts = np.array([[-5.0, 1.5, 1.5], [9.0, 9.0, 9.0], [4.0, 0.5, 0.5], [3.99, 3.99, 3.99], [0.0, 0.0, 0.0]])
    keys = tree.insert(pts)
    assert tree.stats()["points_clipped"] == 3
    assert tree.stats()["points_inserted"] == 5
    expected = morton_encode(np.array([[0, 1, 1], [3, 3, 3], [3, 0, 0], [3, 3, 3], [0, 0, 0]]))
    np.testing.assert_array_equal(keys, np.unique(expected))
    np.testing.assert_array_equal(tree.point_keys(pts), expected)
    assert tree.counts(morton_encode(np.array([[3, 3, 3]])))[0] == 2


def test_origin_none_centres_on_first_point_and_reset_rechooses():
    tree = SparseOctree(OctreeConfig(leaf_size=2.0, depth=4))  # extent 32
    assert tree.origin is None
    tree.insert(np.array([[100.0, -50.0, 3.0], [101.0, -50.0, 3.0]]))
    np.testing.assert_array_equal(tree.origin, [84.0, -66.0, -13.0])
    np.testing.assert_array_equal(tree.leaf_centres(tree.keys()[:1]), [[101.0, -49.0, 4.0]])
    assert tree.stats()["points_clipped"] == 0
    tree.reset()
    assert len(tree) == 0 and tree.origin is None and tree.stats()["points_inserted"] == 0
    tree.insert(np.array([[0.0, 0.0, 0.0]]))
    np.testing.assert_array_equal(tree.origin, [-16.0, -16.0, -16.0])


def test_bad_input_errors():
    tree = make_tree(num_classes=3, embedding_dim=4)
    ok = np.zeros((2, 3))
    with pytest.raises(ValueError, match="finite"):
        tree.insert(np.array([[0.0, np.nan, 0.0]]))
    with pytest.raises(ValueError, match="finite"):
        tree.insert(np.array([[0.0, np.inf, 0.0]]))
    with pytest.raises(ValueError, match="shape"):
        tree.insert(np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"\(4,\)"):
        tree.insert(ok, embedding=np.zeros(5))
    with pytest.raises(ValueError, match="finite"):
        tree.insert(ok, embedding=np.array([0.0, 0.0, np.nan, 0.0]))
    with pytest.raises(ValueError, match="classes"):
        tree.insert(ok, classes=np.array([0, 3]))
    with pytest.raises(ValueError, match="classes"):
        tree.insert(ok, classes=np.array([-1, 0]))
    with pytest.raises(ValueError, match="classes"):
        tree.insert(ok, classes=np.array([0]))
    with pytest.raises(ValueError, match="step"):
        tree.insert(ok, step=1.5)
    with pytest.raises(ValueError, match="embedding_dim=0"):
        make_tree().insert(ok, embedding=np.zeros(1))
    assert len(tree) == 0 and tree.stats()["points_inserted"] == 0  # nothing half-inserted
    assert tree.insert(np.empty((0, 3))).shape == (0,)
    with pytest.raises(KeyError):
        tree.counts([7])


def test_rows_lookup():
    tree = make_tree()
    keys = tree.insert(np.array([[0.5, 0.5, 0.5], [1.5, 0.5, 0.5]]))
    rows = tree.rows(np.array([keys[1], 999, keys[0]], dtype=np.uint64))
    assert rows[1] == -1 and sorted(rows[[0, 2]].tolist()) == [0, 1]
    assert tree.rows(int(keys[0])).shape == (1,)
    assert make_tree().rows([1, 2]).tolist() == [-1, -1]


# ---------------------------------------------------------------------------------------------
# queries vs brute force


@settings(max_examples=80, deadline=None)
@given(
    st.integers(0, 2**32 - 1),  # cloud seed: clouds are dense so that the sphere's edge cells are occupied
    st.integers(1, 3000),
    st.floats(0.5, 5.0),
    st.tuples(*[st.floats(-1.0, 6.0)] * 3),
    st.floats(0.0, 5.0),  # radius 5 at leaf 0.37 gives > 4096 box cells: the scan path
    st.sampled_from([0.25, 0.37, 0.5, 1.0]),
)
def test_radius_query_matches_brute_force(seed, n, span, query, radius, leaf):
    points = np.random.default_rng(seed).uniform(0.0, span, size=(n, 3))
    tree = make_tree(leaf_size=leaf, depth=5)
    tree.insert(points)
    q = np.array(query)
    got = tree.radius_query(q, radius)
    keys = tree.keys()
    d = np.linalg.norm(tree.leaf_centres(keys) - q, axis=1)
    want = keys[d <= radius]
    assert (got[1:] > got[:-1]).all()
    # Allow disagreement only on float ties at the sphere's surface.
    sym = np.setxor1d(got, want)
    if sym.size:
        dd = np.linalg.norm(tree.leaf_centres(sym) - q, axis=1)
        assert np.allclose(dd, radius, rtol=0, atol=1e-9), (sym, dd, radius)


def test_radius_query_on_fully_occupied_grid_both_strategies():
    # Every cell of a 20**3 block is a leaf, so a single missed or extra cell changes the answer.
    rng = np.random.default_rng(3)
    tree = make_tree(leaf_size=0.25, depth=5)
    cells = np.stack(np.meshgrid(*[np.arange(20)] * 3, indexing="ij"), -1).reshape(-1, 3)
    tree.insert((cells + rng.uniform(0.01, 0.99, size=cells.shape)) * 0.25)
    assert len(tree) == 8000
    keys = tree.keys()
    centres = tree.leaf_centres(keys)
    queries = [(rng.uniform(-0.5, 5.5, 3), r) for r in rng.uniform(0.05, 1.5, 40)]  # box <= 13**3 cells: enumerate
    queries += [(rng.uniform(-0.5, 5.5, 3), r) for r in rng.uniform(2.6, 6.0, 10)]  # box > 8000 cells: scan
    for q, r in queries:
        want = keys[np.linalg.norm(centres - q, axis=1) <= r]
        np.testing.assert_array_equal(tree.radius_query(q, float(r)), want)
    # Exact ties on the sphere are included (|centre - q| == r in floating point).
    q = tree.leaf_centres(keys[:1])[0]
    np.testing.assert_array_equal(tree.radius_query(q, 0.25), keys[np.linalg.norm(centres - q, axis=1) <= 0.25])
    assert tree.radius_query(q, 0.25).size == 4  # itself and the +x, +y, +z neighbours (q is at a corner)
    np.testing.assert_array_equal(tree.radius_query(q, 0.0), keys[:1])


def test_radius_query_edges():
    tree = make_tree(leaf_size=0.25, depth=10)
    tree.insert(np.random.default_rng(4).uniform(0.0, 30.0, size=(500, 3)))
    assert tree.radius_query(np.array([-100.0, 0.0, 0.0]), 3.0).size == 0  # box outside the cube
    assert make_tree().radius_query(np.zeros(3), 1.0).size == 0
    with pytest.raises(ValueError):
        tree.radius_query(np.zeros(3), -1.0)
    with pytest.raises(ValueError):
        tree.radius_query(np.array([0.0, np.nan, 0.0]), 1.0)


@settings(max_examples=80, deadline=None)
@given(
    st.integers(0, 2**32 - 1),  # seed of a random set of occupied cells
    st.integers(1, 1500),
    st.tuples(*[st.integers(0, 15)] * 3),
    st.integers(0, 3),
)
def test_neighbours_match_brute_force(seed, n, centre, r):
    cells = np.random.default_rng(seed).integers(0, 16, size=(n, 3))
    tree = make_tree(depth=4)  # cells 0..15: neighbourhoods get clipped at the faces
    tree.insert(cells + 0.5)
    key = int(morton_encode(np.array([centre]))[0])
    got = tree.neighbours(key, r)
    keys = tree.keys()
    cheb = np.abs(morton_decode(keys) - np.array(centre)).max(axis=1)
    want = keys[(cheb <= r) & (keys != key)]
    np.testing.assert_array_equal(got, want)


def test_neighbours_rejects_bad_input():
    tree = make_tree(depth=4)
    with pytest.raises(ValueError):
        tree.neighbours(0, -1)
    with pytest.raises(ValueError):
        tree.neighbours(2**12, 1)  # beyond depth 4
    with pytest.raises(ValueError):
        tree.neighbours([1, 2], 1)


def test_coarse_keys():
    rng = np.random.default_rng(4)
    tree = make_tree(depth=6)
    tree.insert(rng.uniform(0.0, 64.0, size=(500, 3)))
    cells = morton_decode(tree.keys())
    for level in range(7):
        want = np.sort(morton_encode(np.unique(cells >> level, axis=0)))
        np.testing.assert_array_equal(tree.coarse_keys(level), want)
    np.testing.assert_array_equal(tree.coarse_keys(6), [0])
    with pytest.raises(ValueError):
        tree.coarse_keys(7)


def test_snapshot_and_stats():
    tree = make_tree(num_classes=3)
    keys = tree.insert(np.array([[0.25, 0.5, 0.5], [0.75, 0.5, 0.5], [5.5, 5.5, 5.5]]), np.array([1, 2, 2]))
    snap = tree.snapshot()
    assert {k: v.dtype for k, v in snap.items()} == {
        "keys": np.uint64,
        "centroids": np.float32,
        "counts": np.int32,
        "histograms": np.int32,
        "token_slots": np.int64,
        "origin": np.float64,
    }
    np.testing.assert_array_equal(snap["keys"], keys)
    np.testing.assert_allclose(snap["centroids"], [[0.5, 0.5, 0.5], [5.5, 5.5, 5.5]])
    np.testing.assert_array_equal(snap["counts"], [2, 1])
    np.testing.assert_array_equal(snap["histograms"], [[0, 1, 1], [0, 0, 1]])
    stats = tree.stats()
    assert stats["leaves"] == 2 and stats["points_inserted"] == 3 and stats["points_clipped"] == 0
    assert stats["bytes"] > 0
    empty = SparseOctree(OctreeConfig()).snapshot()
    assert empty["keys"].shape == (0,) and empty["centroids"].shape == (0, 3) and np.isnan(empty["origin"]).all()


# ---------------------------------------------------------------------------------------------
# agreement with Open3D's octree


def test_partition_matches_open3d_octree():
    o3d = pytest.importorskip("open3d")
    depth, size = 4, 12.8
    origin = np.array([-3.2, 1.5, 0.7])
    leaf = size / 2**depth
    rng = np.random.default_rng(5)
    pts = origin + rng.uniform(0.0, size, size=(3000, 3))
    frac = (pts - origin) / leaf
    frac -= np.floor(frac)
    pts = pts[((frac > 1e-6) & (frac < 1 - 1e-6)).all(axis=1)][:2000]  # away from cell faces (float ties)
    assert len(pts) == 2000

    octree = o3d.geometry.Octree(max_depth=depth, origin=origin, size=size)
    f_init = o3d.geometry.OctreePointColorLeafNode.get_init_function()
    for i, p in enumerate(pts):
        octree.insert_point(p, f_init, o3d.geometry.OctreePointColorLeafNode.get_update_function(i, np.zeros(3)))
    o3d_leaves: dict[frozenset[int], np.ndarray] = {}

    def collect(node, info):
        if isinstance(node, o3d.geometry.OctreePointColorLeafNode):
            assert info.depth == depth
            o3d_leaves[frozenset(node.indices)] = np.asarray(info.origin)
        return False

    octree.traverse(collect)

    tree = SparseOctree(OctreeConfig(leaf_size=leaf, depth=depth, origin=tuple(origin)))
    point_keys = np.concatenate([tree.insert(p[None]) for p in pts])  # one point per insert -> its leaf key
    ours: dict[int, set[int]] = defaultdict(set)
    for i, k in enumerate(point_keys.tolist()):
        ours[k].add(i)
    assert {frozenset(s) for s in ours.values()} == set(o3d_leaves)
    assert len(tree) == len(o3d_leaves)
    # The same leaves also sit in the same place: Open3D's leaf min corner + half a leaf is our centre.
    for k, members in ours.items():
        np.testing.assert_allclose(tree.leaf_centres(k)[0], o3d_leaves[frozenset(members)] + leaf / 2, atol=1e-9)
    # And the batched insert gives the same partition as the per-point one.
    batch = SparseOctree(OctreeConfig(leaf_size=leaf, depth=depth, origin=tuple(origin)))
    np.testing.assert_array_equal(batch.insert(pts), tree.keys())
    np.testing.assert_array_equal(batch.point_keys(pts), point_keys)
    np.testing.assert_array_equal(batch.counts(tree.keys()), tree.counts(tree.keys()))
