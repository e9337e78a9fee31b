#!/usr/bin/env python3
"""Side-by-side speed of music_crs.BM25 and bm25s 0.3.16 (numpy and numba backends), one run,
one thread, on the shared BM25 benchmark; then `music_crs.evaluate` on the 8,000-row dev set.

    python3 ../shared/bench/make_bm25_bench.py target/bench-data
    python crates/music-crs-py/bench/bench_bm25.py target/bench-data [--shared ../shared]

Each bm25s backend runs in its own process through ../shared/bench/bm25s_peer.py (index time
includes tokenization; retrieve time includes query tokenization; numba is compiled before the
timed region), writing its top-20; music_crs runs in this process and is timed the same way.
The top-20 check compares every positive-score hit with bm25s numpy: same id, or an exact tie
(same float32 score here), and scores within 1e-4 (bm25s output is rounded to 5 decimals).
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time

import music_crs


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def run_peer(shared, corpus, queries, backend, out):
    cmd = [sys.executable, os.path.join(shared, "bench", "bm25s_peer.py"), corpus, queries,
           "--threads", "1", "--backend", backend, "--out", out]
    result = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def bench_ours(corpus_path, queries_path, k):
    docs = read_jsonl(corpus_path)
    queries = read_jsonl(queries_path)
    texts = [q["text"] for q in queries]
    t0 = time.perf_counter()
    model = music_crs.BM25()
    model.index([d["text"] for d in docs], ids=[d["id"] for d in docs])
    t1 = time.perf_counter()
    ids, scores = model.retrieve(texts, k=k, n_threads=1)
    t2 = time.perf_counter()
    return model, queries, ids, scores, {
        "tool": f"music_crs {music_crs.__version__}", "docs": len(docs), "queries": len(queries),
        "threads": 1, "index_s": round(t1 - t0, 3), "queries_per_s": round(len(queries) / (t2 - t1), 1),
    }


def compare_top(model, queries, ids, scores, peer_hits):
    doc_ids = model.doc_ids
    position = {d: i for i, d in enumerate(doc_ids)}
    expected = {row["id"]: row["hits"] for row in read_jsonl(peer_hits)}
    compared = same = ties = 0
    bad = []
    for row, query in enumerate(queries):
        want = [(d, s) for d, s in expected[query["id"]] if s > 0]
        got = [(doc_ids[i], float(s)) for i, s in zip(ids[row], scores[row]) if i >= 0]
        if len(got) != len(want):
            bad.append(f"{query['id']}: {len(got)} hits vs {len(want)}")
            continue
        all_scores = None
        for (gid, gs), (wid, ws) in zip(got, want):
            compared += 1
            if abs(gs - ws) > 1e-4:
                bad.append(f"{query['id']}: score {gs} vs {ws}")
            elif gid == wid:
                same += 1
            else:
                if all_scores is None:
                    all_scores = model.get_scores(query["text"])
                if float(all_scores[position[wid]]) == gs:
                    ties += 1
                else:
                    bad.append(f"{query['id']}: {gid} vs {wid}")
    return {"hits_compared": compared, "same_id": same, "exact_tie_swaps": ties, "mismatches": len(bad),
            "first_mismatches": bad[:3]}


def bench_evaluate(shared, repeats=5):
    truth_path = os.path.join(shared, "fixtures", "evaluator", "devset_ground_truth.json")
    with open(truth_path, encoding="utf-8") as f:
        truth = json.load(f)
    rng = random.Random(14)
    pool = [row["ground_truth_track_id"] for row in truth]
    words = "warm mellow upbeat jazz guitar night drive soft vocals classic new wave indie calm".split()
    predictions = []
    for row in truth:
        ids = rng.sample(pool, 25)
        ids = [i for i in dict.fromkeys(ids) if i != row["ground_truth_track_id"]][:19]
        ids.insert(rng.randrange(20), row["ground_truth_track_id"])
        predictions.append({"session_id": row["session_id"], "user_id": row["user_id"],
                            "turn_number": row["turn_number"], "predicted_track_ids": ids,
                            "predicted_response": " ".join(rng.choice(words) for _ in range(30))})
    with tempfile.TemporaryDirectory() as tmp:
        pred_path = os.path.join(tmp, "predictions.json")
        with open(pred_path, "w", encoding="utf-8") as f:
            json.dump(predictions, f)
        timings = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            scores = music_crs.evaluate(pred_path, truth_path, catalog_size=47071)
            timings.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        music_crs.evaluate(predictions, truth, catalog_size=47071)
        in_memory = time.perf_counter() - t0
    return {"rows": len(truth), "files_s_best": round(min(timings), 4), "files_s_median": round(sorted(timings)[len(timings) // 2], 4),
            "lists_of_dicts_s": round(in_memory, 4), "ndcg@20": scores["ndcg@20"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", help="directory with corpus.jsonl and queries.jsonl (make_bm25_bench.py)")
    ap.add_argument("--shared", default=os.environ.get("MUSIC_CRS_SHARED_DIR", "../shared"))
    ap.add_argument("--k", type=int, default=20)
    a = ap.parse_args()
    corpus = os.path.join(a.data, "corpus.jsonl")
    queries = os.path.join(a.data, "queries.jsonl")
    with tempfile.TemporaryDirectory() as tmp:
        peers = {}
        for backend in ("numpy", "numba"):
            peers[backend] = run_peer(a.shared, corpus, queries, backend, os.path.join(tmp, f"{backend}.jsonl"))
            print(json.dumps(peers[backend]), flush=True)
        model, qs, ids, scores, ours = bench_ours(corpus, queries, a.k)
        print(json.dumps(ours), flush=True)
        check = compare_top(model, qs, ids, scores, os.path.join(tmp, "numpy.jsonl"))
        print(json.dumps({"top20_vs_bm25s_numpy": check}), flush=True)
    print()
    print(f"{'':24}{'index s':>10}{'queries/s':>12}{'index ×':>10}{'retrieve ×':>12}")
    for name, row in [("bm25s numpy", peers["numpy"]), ("bm25s numba", peers["numba"]), ("music_crs", ours)]:
        print(f"{name:24}{row['index_s']:>10.3f}{row['queries_per_s']:>12.1f}"
              f"{row['index_s'] / ours['index_s']:>10.1f}{ours['queries_per_s'] / row['queries_per_s']:>12.1f}")
    print("(× = music_crs speed-up over that row: index time ratio, queries/s ratio; 1 thread)")
    ev = bench_evaluate(a.shared)
    print(json.dumps({"evaluate_dev_set": ev}))
    ok = check["mismatches"] == 0
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
