"""evaluate / validate: parity with the official evaluator's expected scores, bad inputs."""

import json

import pytest

import music_crs
from conftest import shared_path


def load(name):
    return json.loads(shared_path(f"fixtures/evaluator/{name}").read_text())


def test_scores_match_the_official_evaluator_bit_for_bit():
    expected = load("expected_scores_100.json")
    predictions = shared_path("fixtures/evaluator/predictions_100.json")
    truth = shared_path("fixtures/evaluator/ground_truth_100.json")
    got = music_crs.evaluate(predictions, truth, catalog_size=47071)
    assert set(got) == set(expected)
    for key, value in expected.items():
        # Exact equality: the official file holds Python's repr of the same doubles.
        assert got[key] == value, key
    # Lists of dicts score exactly like the files they came from.
    rows = music_crs.evaluate(load("predictions_100.json"), load("ground_truth_100.json"))
    assert rows == got


def test_per_turn_scores_average_to_the_official_ndcg():
    got = music_crs.evaluate(
        shared_path("fixtures/evaluator/predictions_100.json"),
        shared_path("fixtures/evaluator/ground_truth_100.json"),
        per_turn=True,
    )
    turns = got["per_turn"]
    assert [t["turn_number"] for t in turns] == sorted(t["turn_number"] for t in turns)
    assert sum(t["rows"] for t in turns) == len(load("ground_truth_100.json"))
    for k in (1, 10, 20):
        mean = sum(t[f"ndcg@{k}"] for t in turns) / len(turns)
        assert mean == pytest.approx(got[f"ndcg@{k}"], abs=1e-12)
        assert all(0.0 <= t[f"ndcg@{k}"] <= 1.0 for t in turns)


def test_the_gold_ranking_scores_one_on_the_dev_set():
    truth = load("devset_ground_truth.json")
    predictions = [
        {
            "session_id": row["session_id"],
            "user_id": row["user_id"],
            "turn_number": row["turn_number"],
            "predicted_track_ids": [row["ground_truth_track_id"]],
            "predicted_response": "a fine song",
        }
        for row in truth
    ]
    got = music_crs.evaluate(predictions, truth, catalog_size=47071)
    assert got["ndcg@1"] == got["ndcg@20"] == 1.0
    assert got["total_catalog_size"] == 47071


def prediction(session="s1", turn=1, ids=("a", "b"), response="hello there"):
    return {
        "session_id": session,
        "user_id": "u",
        "turn_number": turn,
        "predicted_track_ids": list(ids),
        "predicted_response": response,
    }


TRUTH = [
    {"session_id": "s1", "user_id": "u", "turn_number": 1, "ground_truth_track_id": "a"},
    {"session_id": "s1", "user_id": "u", "turn_number": 2, "ground_truth_track_id": "c"},
]


def test_a_repeated_id_is_a_clear_error():
    rows = [prediction(ids=("a", "b", "a")), prediction(turn=2)]
    with pytest.raises(ValueError, match=r'session s1, turn 1: predicted_track_ids repeats "a" at rank 3'):
        music_crs.evaluate(rows, TRUTH)


def test_a_missing_turn_is_a_clear_error():
    with pytest.raises(ValueError, match="session s1, turn 2: no prediction for this turn"):
        music_crs.evaluate([prediction()], TRUTH)


def test_missing_files_and_bad_json_name_the_file(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(FileNotFoundError, match="nope.json"):
        music_crs.evaluate(missing, TRUTH)
    broken = tmp_path / "broken.json"
    broken.write_text('[{"session_id": "s1",')
    with pytest.raises(ValueError, match=r"broken.json: truncated JSON at line 1"):
        music_crs.evaluate(broken, TRUTH)
    with pytest.raises(ValueError, match="predictions: expected a file path or a list of dicts, found int"):
        music_crs.evaluate(3, TRUTH)
    with pytest.raises(ValueError, match="catalog_size|catalog"):
        music_crs.evaluate([prediction(), prediction(turn=2)], TRUTH, catalog_size=0)


def test_bad_ground_truth_names_the_row():
    truth = [{"session_id": "s1", "user_id": "u", "turn_number": "one", "ground_truth_track_id": "a"}]
    with pytest.raises(ValueError, match="ground_truth") as err:
        music_crs.evaluate([prediction()], truth)
    assert "turn_number" in str(err.value)


def test_validate_lists_every_problem_with_its_place():
    rows = [
        prediction(ids=("a", "b", "a")),
        prediction(session="s9"),
        {"session_id": "s1", "turn_number": 2, "predicted_track_ids": "a"},
        prediction(ids=[f"t{i}" for i in range(21)]),
    ]
    problems = music_crs.validate(rows, ground_truth=TRUTH, catalog=["a", "b"])
    kinds = {(p.row, p.kind) for p in problems}
    assert (1, "duplicate_track_id") in kinds
    assert (2, "unknown_turn") in kinds
    assert (3, "missing_field") in kinds or (3, "wrong_type") in kinds
    assert (4, "too_many_track_ids") in kinds
    assert (4, "unknown_track_id") in kinds
    dup = next(p for p in problems if p.kind == "duplicate_track_id")
    assert (dup.session, dup.turn) == ("s1", 1)
    assert dup.blocks_scoring
    assert dup.message == 'predicted_track_ids repeats "a" at rank 3 (first at rank 1)'
    assert str(dup) == 'row 1, session s1, turn 1: ' + dup.message
    assert music_crs.validate([prediction(), prediction(turn=2)], ground_truth=TRUTH) == []


def test_validate_matches_on_the_shared_prediction_file():
    problems = music_crs.validate(
        shared_path("fixtures/evaluator/predictions_100.json"),
        ground_truth=shared_path("fixtures/evaluator/ground_truth_100.json"),
    )
    # The fixture is scorable: nothing blocks.
    assert not [p for p in problems if p.blocks_scoring]
