#!/usr/bin/env python3
"""Writes the starting corpus of the fuzz targets (small well-formed inputs the fuzzer
mutates): run from fuzz/ as `python3 seeds/make_seeds.py`; the files go to corpus/TARGET/."""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(os.path.dirname(HERE), "corpus")


def put(target, name, data):
    folder = os.path.join(CORPUS, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def gguf_string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def tiny_gguf():
    """A one-block Llama GGUF: hidden 8, 2 heads, 1 KV head, feed-forward 16, vocabulary 4."""
    hidden, ff, vocab, kv = 8, 16, 4, 4
    meta = [
        ("general.architecture", 8, gguf_string("llama")),
        ("llama.block_count", 4, struct.pack("<I", 1)),
        ("llama.context_length", 4, struct.pack("<I", 64)),
        ("llama.embedding_length", 4, struct.pack("<I", hidden)),
        ("llama.feed_forward_length", 4, struct.pack("<I", ff)),
        ("llama.attention.head_count", 4, struct.pack("<I", 2)),
        ("llama.attention.head_count_kv", 4, struct.pack("<I", 1)),
        ("llama.rope.dimension_count", 4, struct.pack("<I", 4)),
        ("llama.rope.freq_base", 6, struct.pack("<f", 10000.0)),
        ("llama.attention.layer_norm_rms_epsilon", 6, struct.pack("<f", 1e-5)),
        ("tokenizer.ggml.tokens", 9,
         struct.pack("<IQ", 8, 4) + b"".join(gguf_string(t) for t in ["a", "b", "c", "d"])),
    ]
    tensors = [
        ("token_embd.weight", [vocab, hidden]),
        ("output_norm.weight", [hidden]),
        ("blk.0.attn_q.weight", [hidden, hidden]),
        ("blk.0.attn_k.weight", [kv, hidden]),
        ("blk.0.attn_v.weight", [kv, hidden]),
        ("blk.0.attn_output.weight", [hidden, hidden]),
        ("blk.0.ffn_gate.weight", [ff, hidden]),
        ("blk.0.ffn_down.weight", [hidden, ff]),
        ("blk.0.ffn_up.weight", [ff, hidden]),
        ("blk.0.attn_norm.weight", [hidden]),
        ("blk.0.ffn_norm.weight", [hidden]),
    ]
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(meta))
    for key, code, payload in meta:
        out += gguf_string(key) + struct.pack("<I", code) + payload
    offset = 0
    sizes = []
    for name, dims in tensors:
        out += gguf_string(name) + struct.pack("<I", len(dims))
        for d in reversed(dims):
            out += struct.pack("<Q", d)
        n = 1
        for d in dims:
            n *= d
        out += struct.pack("<IQ", 0, offset)
        sizes.append(n * 4)
        offset += (n * 4 + 31) // 32 * 32
    out += b"\0" * ((-len(out)) % 32)
    return out + b"\0" * offset


def fnv1a(data):
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & (2**64 - 1)
    return h


def word_checksum(data):
    """The vector file's checksum: FNV-1a over 8-byte little-endian words, seeded with the
    length, the last partial word byte by byte."""
    h = 0xCBF29CE484222325 ^ len(data)
    whole = len(data) // 8 * 8
    for i in range(0, whole, 8):
        h = ((h ^ int.from_bytes(data[i:i + 8], "little")) * 0x100000001B3) & (2**64 - 1)
    for b in data[whole:]:
        h = ((h ^ b) * 0x100000001B3) & (2**64 - 1)
    return h


def u32_str(s):
    b = s.encode()
    return struct.pack("<I", len(b)) + b


def bm25_index():
    """Two documents, three terms."""
    payload = u32_str("{}") + struct.pack("<Q", 2)
    payload += u32_str("a") + struct.pack("<I", 2) + u32_str("b") + struct.pack("<I", 1)
    payload += struct.pack("<d", 1.5) + struct.pack("<Q", 3)
    payload += u32_str("flo") + u32_str("rida") + u32_str("good")
    payload += struct.pack("<4Q", 0, 1, 2, 4)
    payload += struct.pack("<If", 0, 0.5) + struct.pack("<If", 0, 0.5)
    payload += struct.pack("<If", 0, 0.2) + struct.pack("<If", 1, 0.9)
    return b"MCRSBM25" + struct.pack("<IQQ", 1, len(payload), fnv1a(payload)) + payload


def vector_file():
    body = b"MCRSVEC1" + struct.pack("<IIQ", 1, 2, 2) + u32_str("model=x;fields=name")
    body += u32_str("t1") + u32_str("t2") + struct.pack("<4f", 1.0, 0.0, 0.6, 0.8)
    return body + struct.pack("<Q", word_checksum(body))


def hnsw_index():
    """A saved three-row HNSW index (format version 3), one layer, each row the others'
    neighbour."""
    header = json.dumps({"dim": 2, "params": {"max_nb_connection": 16, "ef_construction": 200,
                                              "ef_search": 64, "max_layer": 16}},
                        separators=(",", ":")).encode()
    body = b"MCRSHNSW" + struct.pack("<I", 3) + struct.pack("<Q", len(header)) + header
    body += struct.pack("<Q", 3) + u32_str("t1") + u32_str("t2") + u32_str("t3")
    body += struct.pack("<6f", 0.6, 0.8, 1.0, 0.0, 0.0, 1.0) + bytes([0, 0, 0])
    for others in ((1, 2), (0, 2), (0, 1)):
        body += struct.pack("<3I", 2, *others)
    return body + struct.pack("<Q", word_checksum(body))


def main():
    put("bm25_index", "two_docs", bm25_index())
    put("vector_files", "two_rows", vector_file())
    put("vector_files", "hnsw_index", hnsw_index())
    config_dir = os.path.join(os.path.dirname(os.path.dirname(HERE)), "config")
    for name in sorted(os.listdir(config_dir)):
        with open(os.path.join(config_dir, name), "rb") as f:
            put("config", name, f.read())
    put("gguf_header", "tiny_llama.gguf", tiny_gguf())
    put("predictions", "rows.json", json.dumps([
        {"session_id": "s1", "user_id": "u1", "turn_number": 1,
         "predicted_track_ids": ["t1", "t2"], "predicted_response": "Try t1."},
        {"session_id": "s1", "user_id": "u1", "turn_number": 1,
         "predicted_track_ids": ["t1"], "predicted_response": ""},
        {"session_id": "s2", "turn_number": "x"},
    ]))
    put("ground_truth", "rows.json", json.dumps([
        {"session_id": "s1", "user_id": "u1", "turn_number": 1, "ground_truth_track_id": "t1"},
        {"session_id": "s1", "user_id": "u1", "turn_number": 2,
         "ground_truth_track_id": ["t2", "t3"]},
        {"session_id": "s2", "turn_number": 1},
    ]))
    put("ranker_model", "header.json", json.dumps({"format": "music-crs-ranker", "version": 1}))
    put("ranker_model", "two_trees.json", json.dumps(tiny_ranker()))


def tiny_ranker():
    """A whole model file: one channel (three features), a split tree and a leaf-only tree."""
    leaf = lambda v: {"feature": -1, "threshold": 0.0, "left": 0, "right": 0, "value": v}
    split = {"feature": 1, "threshold": 0.5, "left": 1, "right": 2, "value": 0.0}
    return {
        "format": "music-crs-ranker",
        "version": 1,
        "channels": [{"name": "bm25", "depth": 50}],
        "features": {"similarity_kinds": [], "user_kind": None},
        "feature_names": ["bm25_score", "bm25_rank", "bm25_rrf"],
        "params": {},
        "summary": {
            "turns": 4, "candidate_recall": 0.5, "train_queries": 2, "train_rows": 8,
            "valid_queries": 1, "valid_ndcg_union": 0.3, "valid_ndcg_model": 0.4,
            "trees": 2, "feature_seconds": 0.1, "boosting_seconds": 0.2,
        },
        "trees": [{"nodes": [split, leaf(0.25), leaf(-0.25)]}, {"nodes": [leaf(0.1)]}],
    }


if __name__ == "__main__":
    main()
