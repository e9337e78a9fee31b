#!/usr/bin/env bash
# Records or checks the bytes of every offline config's outputs on data/demo, so a refactor can
# show that it changed no prediction, score or model byte.
#
#   scripts/golden-outputs.sh record   # writes tests/golden/demo-outputs.sha256
#   scripts/golden-outputs.sh check    # reruns everything and compares (exit 1 on a difference)
#
# Needs ../shared (the real blind samples and the MiniLM encoder) and a release build with the
# `llama` and `bert` features; takes a few minutes, most of it training the demo ranker.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-check}"
case "$mode" in record | check) ;; *) echo "usage: $0 record|check" >&2; exit 2 ;; esac
golden=tests/golden/demo-outputs.sha256

cargo build --release --quiet --features llama,bert,hub --bin music-crs
bin="${CARGO_TARGET_DIR:-target}/release/music-crs"
out=$(mktemp -d)
trap 'rm -rf "$out" exp/inference/golden_* exp/scores/golden_*' EXIT

# The ranker model first: the ranked run reads it.
model="$out/demo_ranked.model.json"
ranked=$(mktemp --suffix=.toml)
sed "s|^model = \"exp/models/demo_ranked.json\"|model = \"$model\"|" config/demo_ranked.toml >"$ranked"
"$bin" --quiet train-ranker --config "$ranked" >/dev/null

# Each run under its own method name, so its predictions and scores land at the default paths
# (exp/inference/golden_<name>.json, exp/scores/golden_<name>.*) whatever those defaults are.
run() { # name, then the arguments of `run`
  local name=$1
  shift
  "$bin" --quiet run "$@" --tid "golden_$name" >/dev/null
}
run bm25_template --config config/bm25_template.toml
run random --config config/random.toml
run popularity --config config/popularity.toml
run demo_channels_fusion --config config/demo_channels_fusion.toml
run demo_ranked --config "$ranked"
run demo_blind_bm25_template --config config/demo_blind_bm25_template.toml
run demo_bert_template --config config/demo_bert_template.toml
run sample_blind_a_bm25_template --config config/sample_blind_a_bm25_template.toml
run sample_blind_b_bm25_template --config config/sample_blind_b_bm25_template.toml
# A real GGUF model is slow on a CPU: two sessions show that its path is unchanged.
run demo_bm25_smollm2 --config config/demo_bm25_smollm2.toml --sessions 2
rm -f "$ranked"

# The model file records how long training took: hash it without those two timings. It also
# records fingerprints of the config's channels and feature set, a function of the config and
# the build rather than of training (their stability is pinned by the rank crate's unit tests):
# hashed without them too, the file is what training wrote, as before fingerprints existed.
normalised_model="$out/demo_ranked.model.normalised.json"
python3 - "$model" "$normalised_model" <<'PY'
import json, sys
model = json.load(open(sys.argv[1]))
for key in ("feature_seconds", "boosting_seconds"):
    model["summary"].pop(key, None)
model.pop("features_fingerprint", None)
for channel in model["channels"]:
    channel.pop("fingerprint", None)
json.dump(model, open(sys.argv[2], "w"), sort_keys=True)
PY

files=("$normalised_model" exp/inference/golden_* exp/scores/golden_*)
actual=$(for f in "${files[@]}"; do
  printf '%s  %s\n' "$(sha256sum <"$f" | cut -d' ' -f1)" "$(dirname "$f" | xargs basename)/$(basename "$f")"
done | sed 's|^\([0-9a-f]*\)  tmp[^/]*/|\1  models/|' | sort -k2)

if [ "$mode" = record ]; then
  mkdir -p "$(dirname "$golden")"
  printf '%s\n' "$actual" >"$golden"
  echo "recorded ${#files[@]} files in $golden"
else
  if diff <(sort -k2 "$golden") <(printf '%s\n' "$actual"); then
    echo "all ${#files[@]} outputs byte-identical to $golden"
  else
    echo "outputs differ from $golden (above: < recorded, > now)" >&2
    exit 1
  fi
fi
