"""RFC 9162 section 2.1 with SM3: roots, inclusion and consistency proofs."""

from __future__ import annotations

import hashlib

import pytest

from apps.audit import merkle
from apps.audit.tests.conftest import load_tool

N = 20


def sm3(data: bytes) -> bytes:
    return hashlib.new("sm3", data).digest()


def reference_mth(entries: list[bytes]) -> bytes:
    """MTH straight from the RFC's recursive definition, over the raw leaf inputs."""
    n = len(entries)
    if n == 0:
        return sm3(b"")
    if n == 1:
        return sm3(b"\x00" + entries[0])
    k = 1
    while k * 2 < n:
        k *= 2
    return sm3(b"\x01" + reference_mth(entries[:k]) + reference_mth(entries[k:]))


def entries(n: int) -> list[bytes]:
    return [f"entry {i}".encode() for i in range(n)]


def leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(e) for e in entries(n)]


def flip(h: bytes) -> bytes:
    return bytes([h[0] ^ 1]) + h[1:]


def test_sm3_is_the_standard_sm3():
    # GB/T 32905-2016 appendix A example 1.
    assert merkle.leaf_hash(b"")[:1]  # sanity: hashes are bytes
    assert sm3(b"abc").hex().startswith("66c7f0f4")
    assert merkle.empty_root() == sm3(b"")


def test_leaf_and_node_hashes_use_distinct_prefixes():
    a, b = sm3(b"a"), sm3(b"b")
    assert merkle.leaf_hash(a + b) == sm3(b"\x00" + a + b)
    assert merkle.node_hash(a, b) == sm3(b"\x01" + a + b)
    assert merkle.leaf_hash(a + b) != merkle.node_hash(a, b)


@pytest.mark.parametrize("n", range(N + 1))
def test_roots_match_the_rfc_definition(n):
    expected = reference_mth(entries(n))
    assert merkle.root_from_leaves(leaves(n)) == expected
    assert merkle.MerkleTree(leaves(n)).root() == expected


def test_compact_range_roots_every_prefix_and_round_trips():
    rng = merkle.CompactRange()
    for i, leaf in enumerate(leaves(N)):
        rng.append(leaf)
        assert rng.size == i + 1
        assert len(rng.hashes) == (i + 1).bit_count()
        assert rng.root() == reference_mth(entries(i + 1))
        again = merkle.CompactRange.from_hex(rng.size, rng.to_hex())
        again.append(b"x" * 32)
        rng2 = merkle.CompactRange()
        rng2.extend([*leaves(i + 1), b"x" * 32])
        assert again.root() == rng2.root()
    with pytest.raises(ValueError):
        merkle.CompactRange(3, [b"x" * 32])


def test_subtree_hashes_of_a_big_tree_match_small_trees():
    tree = merkle.MerkleTree(leaves(N))
    for m in range(1, N + 1):
        assert tree.root(m) == reference_mth(entries(m))


def test_inclusion_proofs_verify_for_every_leaf_of_every_size():
    tree = merkle.MerkleTree(leaves(N))
    all_leaves = leaves(N)
    for n in range(1, N + 1):
        root = tree.root(n)
        for m in range(n):
            proof = tree.inclusion_proof(m, n)
            assert proof == merkle.inclusion_proof(all_leaves[:n], m)
            # PATH length is ceil(log2(n)) at most (RFC 9162 2.1.3.1).
            assert len(proof) <= (n - 1).bit_length()
            assert merkle.verify_inclusion(all_leaves[m], m, n, proof, root)


def test_tampered_inclusion_proofs_fail():
    tree = merkle.MerkleTree(leaves(N))
    all_leaves = leaves(N)
    for n in range(2, N + 1):
        root = tree.root(n)
        for m in range(n):
            proof = tree.inclusion_proof(m, n)
            leaf = all_leaves[m]
            assert not merkle.verify_inclusion(flip(leaf), m, n, proof, root)
            assert not merkle.verify_inclusion(leaf, m, n, proof, flip(root))
            assert not merkle.verify_inclusion(leaf, (m + 1) % n, n, proof, root)
            assert not merkle.verify_inclusion(leaf, m, n, [*proof, proof[0]], root)
            assert not merkle.verify_inclusion(leaf, m, n, proof[:-1], root)
            for i in range(len(proof)):
                bad = list(proof)
                bad[i] = flip(bad[i])
                assert not merkle.verify_inclusion(leaf, m, n, bad, root)
    assert not merkle.verify_inclusion(all_leaves[0], 0, 0, [], merkle.empty_root())
    assert not merkle.verify_inclusion(all_leaves[0], 1, 1, [], all_leaves[0])


def test_consistency_proofs_verify_for_every_pair_of_sizes():
    tree = merkle.MerkleTree(leaves(N))
    for n in range(1, N + 1):
        for m in range(1, n + 1):
            proof = tree.consistency_proof(m, n)
            assert proof == merkle.consistency_proof(leaves(n), m)
            if m == n:
                assert proof == []
            assert merkle.verify_consistency(m, n, tree.root(m), tree.root(n), proof)


def test_tampered_consistency_proofs_fail():
    tree = merkle.MerkleTree(leaves(N))
    other = merkle.MerkleTree([*leaves(N)[:3], flip(leaves(N)[3]), *leaves(N)[4:]])
    for n in range(2, N + 1):
        for m in range(1, n):
            proof = tree.consistency_proof(m, n)
            r1, r2 = tree.root(m), tree.root(n)
            assert not merkle.verify_consistency(m, n, flip(r1), r2, proof)
            assert not merkle.verify_consistency(m, n, r1, flip(r2), proof)
            assert not merkle.verify_consistency(m, n, r1, r2, proof[:-1])
            assert not merkle.verify_consistency(m, n, r1, r2, [*proof, r1])
            for i in range(len(proof)):
                bad = list(proof)
                bad[i] = flip(bad[i])
                assert not merkle.verify_consistency(m, n, r1, r2, bad)
            if m > 3:
                # A history that changed leaf 3 is not an extension of the first tree.
                fork = other.consistency_proof(m, n)
                assert not merkle.verify_consistency(m, n, r1, other.root(n), fork)
    assert not merkle.verify_consistency(0, 3, merkle.empty_root(), tree.root(3), [])
    assert not merkle.verify_consistency(3, 2, tree.root(3), tree.root(2), [])


def test_the_standalone_tool_agrees_with_the_library():
    tool = load_tool()
    tree = merkle.MerkleTree(leaves(N))
    all_leaves = leaves(N)
    for n in range(1, N + 1):
        for m in range(n):
            proof = tree.inclusion_proof(m, n)
            assert tool.verify_inclusion(all_leaves[m], m, n, proof, tree.root(n))
            assert not tool.verify_inclusion(flip(all_leaves[m]), m, n, proof, tree.root(n))
        for m in range(1, n + 1):
            proof = tree.consistency_proof(m, n)
            assert tool.verify_consistency(m, n, tree.root(m), tree.root(n), proof)
            if proof:
                assert not tool.verify_consistency(m, n, tree.root(m), tree.root(n), proof[1:])


def test_proofs_on_a_large_tree_stay_cheap():
    big = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(100_000)]
    tree = merkle.MerkleTree(big)
    root = tree.root()
    assert root == merkle.root_from_leaves(big)
    for index in (0, 1, 65_535, 65_536, 99_999):
        proof = tree.inclusion_proof(index)
        assert len(proof) <= 17
        assert merkle.verify_inclusion(big[index], index, 100_000, proof, root)
    proof = tree.consistency_proof(99_000)
    assert merkle.verify_consistency(99_000, 100_000, tree.root(99_000), root, proof)
