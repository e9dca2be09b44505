#!/usr/bin/env bash
# The default run, end to end on a fresh Debian 12 machine:
#   1. set-up and build (scripts/setup.sh)
#   2. the Fashion-MNIST dataset as WebDataset shards (duet data fashion-mnist)
#   3. a SentencePiece tokenizer trained on the training captions (duet tokenizer train)
#   4. training with configs/fashion-mnist.yaml (duet train), which evaluates zero-shot
#      classification on the test split at the end and writes runs/fashion-mnist/loss.svg and
#      the run report runs/fashion-mnist/report.html
#   5. duet eval of the final checkpoint (its --json object), then the report's path.
# Extra arguments are passed to `duet train` (e.g. --set train.steps=200).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DATA=data/fashion-mnist
CONFIG=configs/fashion-mnist.yaml
RUN=runs/fashion-mnist

bash scripts/setup.sh --target duet
DUET=build/duet

# test/nshards.txt: a dataset from before the CLIP_benchmark layout is rebuilt.
if [[ ! -f "$DATA/dataset.json" || ! -f "$DATA/test/nshards.txt" ]]; then
  "$DUET" data fashion-mnist --out "$DATA"
fi
# The distinct training captions: every prompt template filled with every class name.
while IFS= read -r template; do
  while IFS= read -r name; do
    echo "${template//\{\}/$name}"
  done <"$DATA/classnames.txt"
done <"$DATA/templates.txt" >"$DATA/captions.txt"
"$DUET" tokenizer train --input "$DATA/captions.txt" --vocab-size 56 --out "$DATA/spm"

# A fresh run each time: move an earlier one aside rather than mix the two.
if [[ -d "$RUN" ]]; then
  mv "$RUN" "$RUN.$(date +%Y%m%d-%H%M%S)"
fi
start=$(date +%s)
"$DUET" train -c "$CONFIG" "$@"
echo "training + evaluation took $(( $(date +%s) - start )) s; loss curve: $RUN/loss.svg"
last=$(ls -d "$RUN"/checkpoints/step-* | tail -n 1)
"$DUET" eval --checkpoint "$last" --json
echo "report: $ROOT/$RUN/report.html (open it in a browser)"
