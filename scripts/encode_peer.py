#!/usr/bin/env python3
"""The Python peer of the BERT sentence encoder: sentence-transformers on CPU torch.

Encodes the documents of a JSONL corpus ({"id", "text"} per line) the way a Python user of
the official BERT baseline would, and prints one JSON line with the throughput, so the Rust
side (`encode_corpus --peer`) can print both from one run:

    python scripts/encode_peer.py MODEL_DIR CORPUS.jsonl [--repeat N] [--threads N]
        [--batch N] [--out VECTORS.npy]

Needs a venv outside the repo: `python3 -m venv ../enc-venv && ../enc-venv/bin/pip install
sentence-transformers` (torch comes with it from PyPI). The model directory is a
sentence-transformers folder (e.g. ../shared/models/all-MiniLM-L6-v2); nothing is fetched.
"""

import argparse
import json
import os
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("corpus")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--out", help="write the unit vectors, corpus order, as .npy")
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    with open(args.corpus, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f if line.strip()]
    texts = texts * args.repeat

    model = SentenceTransformer(args.model, device="cpu")
    # One untimed batch: the first call pays for lazy initialisation, not for encoding.
    model.encode(texts[: args.batch], batch_size=args.batch)
    start = time.perf_counter()
    vectors = model.encode(
        texts,
        batch_size=args.batch,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    seconds = time.perf_counter() - start
    if args.out:
        np.save(args.out, vectors.astype(np.float32))
    print(
        json.dumps(
            {
                "tool": "sentence-transformers",
                "version": __import__("sentence_transformers").__version__,
                "torch": torch.__version__,
                "threads": args.threads,
                "batch": args.batch,
                "docs": len(texts),
                "seconds": round(seconds, 3),
                "docs_per_s": round(len(texts) / seconds, 1),
                "max_seq_length": model.max_seq_length,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
