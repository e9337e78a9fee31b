"""rrf, and a Rust panic surfacing as a Python exception."""

import pytest

import music_crs


def test_rrf_is_weighted_reciprocal_rank_fusion():
    fused = music_crs.rrf([["a", "b", "c"], ["b", ("d", 9.0)]], weights=[1.0, 2.0], k=60)
    expected = {
        "a": 1 / 61,
        "b": 1 / 62 + 2 / 61,
        "c": 1 / 63,
        "d": 2 / 62,
    }
    assert [id for id, _ in fused] == sorted(expected, key=lambda i: -expected[i])
    for id, score in fused:
        assert score == pytest.approx(expected[id], rel=1e-6)
    top = music_crs.rrf([["a", "b"], ["b", "a"]], top_k=1)
    assert top == [("a", pytest.approx(1 / 61 + 1 / 62))]
    # Equal scores: the better best rank, then the earlier list, wins.
    tie = music_crs.rrf([["x", "y"], ["y", "x"]])
    assert [id for id, _ in tie] == ["x", "y"]
    assert len(music_crs.rrf([["a", "b", "c"]], top_k=2)) == 2


def test_rrf_rejects_bad_input():
    with pytest.raises(ValueError, match="2 weights for 1 rankings"):
        music_crs.rrf([["a"]], weights=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"rankings\[0\]: expected a list of ids, found a string"):
        music_crs.rrf(["abc"])
    with pytest.raises(ValueError, match=r"rankings\[0\]\[1\]"):
        music_crs.rrf([["a", 3]])


def test_a_rust_panic_is_a_python_exception():
    with pytest.raises(RuntimeError, match="deliberate panic"):
        music_crs._native.panic_for_tests()
    # The interpreter is fine afterwards.
    assert music_crs.rrf([["a"]]) == [("a", pytest.approx(1 / 61))]
