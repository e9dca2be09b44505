#!/usr/bin/env bash
# The prepared GPU check: one short run on a lent GPU machine that proves duet's CUDA paths,
# writing a Markdown report (docs/gpu.md says how to run it and what each line means). It runs
# from the working tree plus the folder scripts/gpu_pack.sh made (gpu_pack/), within about 7
# minutes, and never stops at the first failure: every step is run, timed and reported.
#
#   1. environment: GPU, driver, torch wheel, duet --version, the pack's manifest
#   2. the [cuda] tests (test_train_cuda, test_kernels_cuda)
#   3. Fashion-MNIST shards and tokenizer from the packed IDX files
#   4. duet train fp32 and bf16, 300 steps each on the GPU: losses and zero-shot top-1 compared
#      (bf16 must be within 2 points), samples/s and the step time split (data wait, compute)
#   5. stop at step 150 and resume to 300 on the GPU: losses against the uninterrupted fp32 run
#   6. duet eval of the fp32 run's GPU checkpoint with no GPU visible (CUDA_VISIBLE_DEVICES=)
#   7. distributed.backend nccl with one process (the NCCL communicator on the GPU)
#   8. duet bench loss --device cuda at N = 4k, 16k, 32k (D = 512; 32k also D = 768) and 64k, with PyTorch's materialised
#      loss and a cuBLAS bf16 GEMM measured in the same run (scripts/bench_loss_torch.py)
#   9. throughput of a ViT-B-32 at 224 px in bf16 (samples/s, data wait vs compute)
#
# Usage: scripts/gpu_check.sh [--pack DIR] [--out DIR] [--work DIR] [--python PY] [--dry-run]
#   --pack     the pack (default gpu_pack/ in the tree)
#   --out      where the report and logs go (default $OUT when set, else gpu_work/out)
#   --work     scratch space (default gpu_work/ in the tree)
#   --python   a Python with the torch wheel (default /opt/torch/.venv/bin/python, else .venv's)
#   --dry-run  here, without a GPU: every step that needs none (pack, libraries, data,
#              tokenizer, a 2-step CPU training with the check's own config, the benchmark
#              scripts on the CPU) and a list of the GPU steps it would run
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PACK="$ROOT/gpu_pack"
WORK="$ROOT/gpu_work"
REPORT_DIR="${OUT:-}"
PY=""
DRY=0
BUDGET_S=420  # the whole check; optional steps are skipped when it is spent
while [[ $# -gt 0 ]]; do
  case "$1" in
    --pack) PACK="$(cd "$2" && pwd)"; shift ;;
    --out) REPORT_DIR="$2"; shift ;;
    --work) WORK="$2"; shift ;;
    --python) PY="$2"; shift ;;
    --dry-run) DRY=1 ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ -n "$REPORT_DIR" ]] || REPORT_DIR="$WORK/out"
mkdir -p "$WORK" "$REPORT_DIR"
REPORT="$REPORT_DIR/gpu_report.md"
LOG="$REPORT_DIR/gpu_check.log"
: >"$LOG"
START=$(date +%s)
FAILED=0

if [[ -z "$PY" ]]; then
  for candidate in /opt/torch/.venv/bin/python "$ROOT/.venv/bin/python" python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import torch' 2>/dev/null; then
      PY="$candidate"
      break
    fi
  done
fi

log() { echo "[gpu_check] $*" | tee -a "$LOG"; }
elapsed() { echo $(( $(date +%s) - START )); }
report() { echo "$*" >>"$REPORT"; }
ROWS=()
# row STEP RESULT SECONDS NOTE: one line of the summary table, also written at once to
# gpu_report_partial.md, which survives a check killed at its time limit.
row() {
  ROWS+=("| $1 | $2 | $3 | $4 |")
  echo "| $1 | $2 | $3 | $4 |" >>"$REPORT_DIR/gpu_report_partial.md"
}

# run NAME LIMIT_S COMMAND...: runs a step with a time limit, its output in the log and in
# $WORK/logs/NAME.log; never stops the script. Returns the command's status.
run() {
  local name="$1" limit="$2"
  shift 2
  local file="$WORK/logs/$name.log"
  mkdir -p "$WORK/logs"
  log "step '$name': $*"
  local t0=$(date +%s)
  # bash -c: the command may be one of the functions exported below (duet, packed_binary).
  timeout --kill-after=10 "$limit" bash -c '"$@"' "$name" "$@" >"$file" 2>&1
  local status=$?
  local took=$(( $(date +%s) - t0 ))
  { echo "---- $name (exit $status, ${took} s) ----"; cat "$file"; } >>"$LOG"
  LAST_SECONDS=$took
  if [[ $status -eq 124 || $status -eq 137 ]]; then
    log "step '$name' ran past its ${limit} s limit"
  fi
  return $status
}
# A GPU step: run when there is a GPU, listed in a dry run.
gpu_run() {
  local name="$1"
  if [[ $DRY -eq 1 ]]; then
    shift 2
    local text="$*" common="${COMMON[*]}" placeholder="<the check config>"
    text="${text//"$common"/$placeholder}"
    log "dry run: would run '$name': $*"
    local note="\`$(echo "$text" | sed 's/|/\\|/g')\`"
    if [[ "$1" == duet && "$2" == train ]]; then
      # Its config is checked now: `duet config show` with the same arguments.
      local args=()
      for a in "${@:3}"; do
        [[ "$a" == --check-syncs ]] || args+=("$a")
      done
      if duet config show "${args[@]}" >"$WORK/logs/$name.config.log" 2>&1; then
        note="$note (config valid)"
      else
        row "$name" "FAIL" "-" "its config does not load: logs/$name.config.log"
        FAILED=1
        return 0
      fi
    fi
    row "$name" "would run" "-" "$note"
    return 0
  fi
  run "$@"
}
over_budget() { (( $(elapsed) > BUDGET_S )); }

# ---- the pack's binaries and libraries, and the torch wheel's libraries -------------------
RUNTIME="$WORK/runtime"
rm -rf "$RUNTIME"
mkdir -p "$RUNTIME"
if [[ -f "$PACK/runtime.tar.xz" ]]; then  # Python's tarfile: xz(1) may be missing there
  "$PY" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
    "$PACK/runtime.tar.xz" "$RUNTIME"
fi
TORCH_LIB="$("$PY" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null)"
SITE="$(dirname "$(dirname "$TORCH_LIB")")"
NVIDIA_LIBS="$(ls -d "$SITE"/nvidia/*/lib 2>/dev/null | tr '\n' ':')"
DUET_LIBS="$RUNTIME/lib:$TORCH_LIB:$NVIDIA_LIBS"
DUET="$RUNTIME/bin/duet"
duet() { LD_LIBRARY_PATH="$DUET_LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$DUET" "$@"; }
packed_binary() { local b="$1"; shift; LD_LIBRARY_PATH="$DUET_LIBS" "$RUNTIME/bin/$b" "$@"; }
export -f duet packed_binary 2>/dev/null
export DUET DUET_LIBS PACK RUNTIME

rm -f "$REPORT" "$REPORT_DIR/gpu_report_partial.md"
report "# duet GPU check$([[ $DRY -eq 1 ]] && echo ' (dry run: no GPU steps ran)')"
report ""

# ---- 1. environment -------------------------------------------------------------------------
if [[ ! -x "$DUET" ]]; then
  log "no pack at $PACK (run scripts/gpu_pack.sh first)"
  report "No pack at \`$PACK\`: run \`scripts/gpu_pack.sh\` first."
  exit 1
fi
if ! duet --version >/dev/null 2>&1; then
  # This machine's libstdc++ is older than the one duet was built with: use the packed one.
  DUET_LIBS="$RUNTIME/lib/compat:$DUET_LIBS"
  log "using the packed libstdc++ (lib/compat)"
fi
export DUET_LIBS
report "## Environment"
report ""
report "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ); host: $(uname -n), $(uname -r)"
if command -v nvidia-smi >/dev/null 2>&1; then
  report "- GPU: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -n 1)"
else
  report "- GPU: none (nvidia-smi not found)"
fi
report "- Python: $PY; torch: $("$PY" -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda, "devices", torch.cuda.device_count())' 2>&1)"
report "- CPU cores: $(nproc)"
report "- duet: $(duet --version 2>&1)"
report "- pack: $(grep -m1 '^commit:' "$PACK/MANIFEST" 2>/dev/null), $(du -sh "$PACK" | cut -f1)"
report ""
HAVE_GPU=0
if [[ $DRY -eq 0 ]] && "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  HAVE_GPU=1
fi
if [[ $DRY -eq 0 && $HAVE_GPU -eq 0 ]]; then
  log "no GPU visible to torch: the GPU steps will fail (use --dry-run on a machine without one)"
fi

# ---- 2. the [cuda] tests --------------------------------------------------------------------
test_summary() {  # the last Catch2 summary line of a log
  grep -E "All tests passed|test cases:" "$1" | tail -n 1 | sed 's/|/\\|/g'
}
for t in test_train_cuda test_kernels_cuda; do
  if [[ ! -x "$RUNTIME/bin/$t" ]]; then
    row "$t" "missing" "-" "not in the pack"
    FAILED=1
    continue
  fi
  if [[ $DRY -eq 1 ]]; then
    count=$(packed_binary "$t" "[cuda]" --list-test-names-only 2>/dev/null | grep -c . || true)
    row "$t [cuda]" "would run" "-" "$count test cases listed by the packed binary"
    continue
  fi
  if run "$t" 180 packed_binary "$t" "[cuda]" --durations yes; then
    row "$t [cuda]" "pass" "$LAST_SECONDS s" "$(test_summary "$WORK/logs/$t.log")"
  else
    row "$t [cuda]" "FAIL" "$LAST_SECONDS s" "$(test_summary "$WORK/logs/$t.log") (log: logs/$t.log)"
    FAILED=1
  fi
  if grep -q "SKIPPED" "$WORK/logs/$t.log"; then
    row "$t [cuda]" "skipped cases" "-" "$(grep -c SKIPPED "$WORK/logs/$t.log") SKIPPED lines: see the log"
  fi
done

# ---- 3. data and tokenizer --------------------------------------------------------------------
DATA="$WORK/data/fashion-mnist"
prepare_data() {
  set -e
  rm -rf "$DATA"
  duet data fashion-mnist --out "$DATA" --idx-dir "$PACK/data/idx"
  while IFS= read -r template; do
    while IFS= read -r name; do
      echo "${template//\{\}/$name}"
    done <"$DATA/classnames.txt"
  done <"$DATA/templates.txt" >"$DATA/captions.txt"
  duet tokenizer train --input "$DATA/captions.txt" --vocab-size 56 --out "$DATA/spm"
}
export -f prepare_data
export DATA
if run data 120 prepare_data; then
  row "Fashion-MNIST shards + tokenizer" "pass" "$LAST_SECONDS s" "$(grep -E '^(train|test):' "$WORK/logs/data.log" | tr '\n' ' ')"
else
  row "Fashion-MNIST shards + tokenizer" "FAIL" "$LAST_SECONDS s" "log: logs/data.log"
  FAILED=1
fi
TRAIN_PATTERN="$(grep -E '^train:' "$WORK/logs/data.log" | sed 's/.*: //')"
TEST_PATTERN="$(grep -E '^test:' "$WORK/logs/data.log" | sed 's/.*: //')"

# The check's training config: configs/fashion-mnist.yaml on the packed data, 300 steps, the loss
# as auto picks it on CUDA (the fused kernels in a build with them, else the tiled loss; neither
# reads the device on the host, so --check-syncs holds either way).
RUNS="$WORK/runs"
LOSS_IMPL=auto
COMMON=(-c "$ROOT/configs/fashion-mnist.yaml"
        --set "tokenizer.path=$DATA/spm.model"
        --set "data.train=[\"$TRAIN_PATTERN\"]"
        --set "eval.zero_shot.source=$TEST_PATTERN"
        --set "eval.zero_shot.classnames=$DATA/classnames.txt"
        --set "eval.zero_shot.templates=$DATA/templates.txt"
        --set "data.workers=-1" --set "train.threads=0"
        --set "train.steps=300" --set "logging.every_steps=50"
        --set "checkpoint.every_steps=150" --set "checkpoint.keep_last=3"
        --set "train.output_dir=$RUNS" --set "loss.implementation=$LOSS_IMPL")
NO_EVAL=(--set 'eval.zero_shot.source=""' --set 'eval.zero_shot.classnames=""'
         --set 'eval.zero_shot.templates=""')

rm -rf "$RUNS"
# A CPU smoke run of the same config (2 steps, no evaluation): catches config and data
# problems before GPU time is spent on them; the dry run's proof that the commands work.
if run cpu_smoke 180 duet train "${COMMON[@]}" --set train.run_name=cpu-smoke \
      --set train.device=cpu --set train.steps=2 --set schedule.warmup_steps=1 \
      --set logging.every_steps=1 --check-syncs \
      --set checkpoint.every_steps=0 "${NO_EVAL[@]}"; then
  row "2-step CPU smoke run (the check's config)" "pass" "$LAST_SECONDS s" ""
else
  row "2-step CPU smoke run (the check's config)" "FAIL" "$LAST_SECONDS s" "log: logs/cpu_smoke.log"
  FAILED=1
fi

# ---- 4. fp32 and bf16 on the GPU -------------------------------------------------------------
# metric RUN KEY: the last value of KEY in a run's metrics.jsonl; mean_metric: over its windows
# after the first (the first holds start-up).
metric() {
  "$PY" - "$RUNS/$1/metrics.jsonl" "$2" <<'EOF' 2>/dev/null
import json, sys
last = None
for line in open(sys.argv[1]):
    r = json.loads(line)
    if sys.argv[2] in r:
        last = r[sys.argv[2]]
print("" if last is None else f"{last:.6g}")
EOF
}
mean_metric() {
  "$PY" - "$RUNS/$1/metrics.jsonl" "$2" <<'EOF' 2>/dev/null
import json, sys
values = [json.loads(l).get(sys.argv[2]) for l in open(sys.argv[1])]
values = [v for v in values if v is not None][1:]
print(f"{sum(values) / len(values):.4g}" if values else "")
EOF
}
for precision in fp32 bf16; do
  if gpu_run "train_$precision" 150 duet train "${COMMON[@]}" --set "train.run_name=$precision" \
        --set train.device=cuda --set "train.precision=$precision" --check-syncs; then
    [[ $DRY -eq 1 ]] || row "duet train $precision, 300 steps (sync-checked)" "pass" "$LAST_SECONDS s" \
      "loss $(metric $precision loss), zero-shot top-1 $(metric $precision zero_shot_top1)"
  else
    row "duet train $precision, 300 steps (sync-checked)" "FAIL" "$LAST_SECONDS s" "log: logs/train_$precision.log"
    FAILED=1
  fi
done
if [[ $DRY -eq 0 ]]; then
  fp32_top1="$(metric fp32 zero_shot_top1)"
  bf16_top1="$(metric bf16 zero_shot_top1)"
  if [[ -n "$fp32_top1" && -n "$bf16_top1" ]]; then
    gap="$("$PY" -c "print(f'{100 * abs($fp32_top1 - $bf16_top1):.2f}')")"
    verdict="$("$PY" -c "print('pass' if 100 * abs($fp32_top1 - $bf16_top1) <= 2 else 'FAIL')")"
    [[ "$verdict" == pass ]] || FAILED=1
    row "bf16 within 2 points of fp32 (zero-shot top-1)" "$verdict" "-" "fp32 $fp32_top1, bf16 $bf16_top1: $gap points apart"
  fi
fi

# ---- 5. stop at 150, resume to 300 on the GPU ---------------------------------------------------
resume_run() {
  set -e
  duet train "$@" --set train.run_name=resumed --set train.device=cuda --stop-after 150
  duet train "$@" --set train.run_name=resumed --set train.device=cuda --set checkpoint.resume=latest
}
export -f resume_run
if gpu_run resume 200 resume_run "${COMMON[@]}"; then
  if [[ $DRY -eq 0 ]]; then
    compare="$("$PY" - "$RUNS/fp32/metrics.jsonl" "$RUNS/resumed/metrics.jsonl" <<'EOF' 2>&1
import json, sys
def losses(path):
    return {json.loads(l)["step"]: json.loads(l)["loss"] for l in open(path) if '"loss"' in l}
a, b = losses(sys.argv[1]), losses(sys.argv[2])
steps = sorted(s for s in a if s in b)
worst = max(abs(a[s] - b[s]) / abs(a[s]) for s in steps)
print(f"{len(steps)} logged steps compared, largest relative loss difference {worst:.2e}; "
      f"{'pass' if worst <= 1e-3 else 'FAIL'}")
EOF
)"
    case "$compare" in *pass) result=pass ;; *) result=FAIL; FAILED=1 ;; esac
    row "stop at 150 + resume to 300 on CUDA vs uninterrupted fp32" "$result" "$LAST_SECONDS s" "$compare"
  fi
else
  row "stop at 150 + resume to 300 on CUDA" "FAIL" "$LAST_SECONDS s" "log: logs/resume.log"
  FAILED=1
fi

# ---- 6. the GPU checkpoint evaluated with no GPU visible ---------------------------------------
last_checkpoint() { ls -d "$RUNS/$1"/checkpoints/step-* 2>/dev/null | tail -n 1; }
if [[ $DRY -eq 1 ]]; then
  gpu_run eval_without_gpu 180 env CUDA_VISIBLE_DEVICES= duet eval --checkpoint "$RUNS/fp32/checkpoints/step-00000300" --json
  # The same command on the CPU smoke run's checkpoint, with the check's evaluation settings.
  if run eval_cpu_checkpoint 180 env CUDA_VISIBLE_DEVICES= bash -c 'duet eval "$@" --json' _ \
      "${COMMON[@]}" --checkpoint "$(last_checkpoint cpu-smoke)"; then
    row "duet eval, CUDA_VISIBLE_DEVICES=, of the CPU smoke checkpoint" "pass" "$LAST_SECONDS s" "$(tail -n 1 "$WORK/logs/eval_cpu_checkpoint.log" | cut -c1-120)"
  else
    row "duet eval, CUDA_VISIBLE_DEVICES=, of the CPU smoke checkpoint" "FAIL" "$LAST_SECONDS s" "log: logs/eval_cpu_checkpoint.log"
    FAILED=1
  fi
elif run eval_without_gpu 180 env CUDA_VISIBLE_DEVICES= bash -c 'duet eval --checkpoint "$0" --json' \
    "$(last_checkpoint fp32)"; then
  cpu_top1="$(tail -n 1 "$WORK/logs/eval_without_gpu.log" | "$PY" -c 'import json,sys; print(json.load(sys.stdin).get("zero_shot_top1",""))' 2>/dev/null)"
  row "duet eval of the GPU checkpoint, CUDA_VISIBLE_DEVICES=" "pass" "$LAST_SECONDS s" "zero-shot top-1 $cpu_top1 on the CPU (GPU run: $(metric fp32 zero_shot_top1))"
else
  row "duet eval of the GPU checkpoint, CUDA_VISIBLE_DEVICES=" "FAIL" "$LAST_SECONDS s" "log: logs/eval_without_gpu.log"
  FAILED=1
fi

# ---- 7. NCCL with one process -------------------------------------------------------------------
if gpu_run nccl 120 duet train "${COMMON[@]}" --set train.run_name=nccl --set train.device=cuda \
      --set distributed.backend=nccl --set train.steps=20 --set schedule.warmup_steps=5 \
      --set logging.every_steps=10 \
      --set checkpoint.every_steps=0 "${NO_EVAL[@]}"; then
  [[ $DRY -eq 1 ]] || row "distributed.backend nccl, world size 1, 20 steps" "pass" "$LAST_SECONDS s" "$(grep -m1 'nccl backend' "$WORK/logs/nccl.log" | sed 's/.*\] //')"
else
  row "distributed.backend nccl, world size 1, 20 steps" "FAIL" "$LAST_SECONDS s" "log: logs/nccl.log"
  FAILED=1
fi

# ---- 8. the loss on the GPU against PyTorch and cuBLAS --------------------------------------------
IMPLS="reference,tiled"
if duet --version | grep -q "fused CUDA loss kernels: yes"; then
  IMPLS="$IMPLS,fused"
fi
BENCH_ROWS=()
# N:D:dtypes: the issue's sizes. The materialised reference is left out at N = 65536 (its N×N
# float32 logits alone are 16 GiB, and it holds several); the tiled loss uses 4096-row tiles on
# the GPU (each tile is a few kernel launches).
for size in 4096:512:float32,bfloat16 16384:512:float32,bfloat16 32768:512:float32,bfloat16 \
            32768:768:bfloat16 65536:512:bfloat16; do
  IFS=: read -r n dim dtypes <<<"$size"
  impls="$IMPLS"
  [[ $n -ge 65536 ]] && impls="${IMPLS/reference,/}"
  for dtype in ${dtypes//,/ }; do
    if over_budget; then
      row "bench loss N=$n D=$dim $dtype" "skipped" "-" "the check's time budget is spent"
      continue
    fi
    name="bench_${n}_${dim}_$dtype"
    if gpu_run "$name" 120 duet bench loss --device cuda --n "$n" --dim "$dim" --dtype "$dtype" \
          --impl "$impls" --tile 4096 --repeats 5; then
      if [[ $DRY -eq 0 ]]; then
        BENCH_ROWS+=("$(grep -E '^\| (reference|tiled|fused) ' "$WORK/logs/$name.log")")
        if grep -q "| failed:" "$WORK/logs/$name.log"; then
          row "duet bench loss --device cuda N=$n D=$dim $dtype" "FAIL" "$LAST_SECONDS s" \
            "$(grep -m1 -o 'failed:[^|]*' "$WORK/logs/$name.log")"
          FAILED=1
        fi
      fi
    else
      row "duet bench loss --device cuda N=$n D=$dim $dtype" "FAIL" "$LAST_SECONDS s" "log: logs/$name.log"
      FAILED=1
    fi
  done
done
if [[ $DRY -eq 1 ]]; then
  run torch_bench_cpu 120 "$PY" "$ROOT/scripts/bench_loss_torch.py" --device cpu --sizes 256 \
    --repeats 2 && row "bench_loss_torch.py on the CPU (N=256)" "pass" "$LAST_SECONDS s" "the peer script runs" ||
    { row "bench_loss_torch.py on the CPU (N=256)" "FAIL" "$LAST_SECONDS s" "log: logs/torch_bench_cpu.log"; FAILED=1; }
  run duet_bench_cpu 120 duet bench loss --device cpu --n 256 --dim 64 --repeats 2 &&
    row "duet bench loss on the CPU (N=256)" "pass" "$LAST_SECONDS s" "" ||
    { row "duet bench loss on the CPU (N=256)" "FAIL" "$LAST_SECONDS s" "log: logs/duet_bench_cpu.log"; FAILED=1; }
fi
if ! over_budget; then
  gpu_run torch_bench 150 "$PY" "$ROOT/scripts/bench_loss_torch.py" --device cuda \
    --sizes 4096,16384,32768 --dim 512 --dtypes float32,bfloat16 --repeats 5 ||
    { row "PyTorch materialised loss + cuBLAS GEMM" "FAIL" "$LAST_SECONDS s" "log: logs/torch_bench.log"; FAILED=1; }
fi

# ---- 9. throughput of a real model ----------------------------------------------------------------
if over_budget; then
  row "ViT-B-32 throughput" "skipped" "-" "the check's time budget is spent"
elif gpu_run throughput 120 duet train "${COMMON[@]}" \
      --set train.run_name=vit-b-32 --set train.device=cuda --set train.precision=bf16 \
      --set model.vision.image_size=224 --set model.vision.patch_size=32 \
      --set model.vision.width=768 --set model.vision.layers=12 --set model.vision.heads=12 \
      --set model.text.width=512 --set model.text.layers=12 --set model.text.heads=8 \
      --set model.embed_dim=512 --set train.steps=60 --set logging.every_steps=20 \
      --set schedule.warmup_steps=10 --set checkpoint.every_steps=0 "${NO_EVAL[@]}"; then
  [[ $DRY -eq 1 ]] || row "ViT-B-32 224 px bf16, batch 256, 60 steps" "pass" "$LAST_SECONDS s" \
    "$(mean_metric vit-b-32 samples_per_second) samples/s; step $(mean_metric vit-b-32 step_time_ms) ms = data wait $(mean_metric vit-b-32 data_wait_ms) + compute $(mean_metric vit-b-32 compute_ms)"
else
  row "ViT-B-32 throughput" "FAIL" "$LAST_SECONDS s" "log: logs/throughput.log"
  FAILED=1
fi

# ---- the report -------------------------------------------------------------------------------------
report "## Summary ($(elapsed) s$([[ $FAILED -eq 0 ]] && echo ', every step passed' || echo ', SOME STEPS FAILED'))"
report ""
report "| step | result | time | notes |"
report "| --- | --- | ---: | --- |"
for r in "${ROWS[@]}"; do
  report "$r"
done
report ""
if [[ $DRY -eq 0 ]]; then
  report "## Training on Fashion-MNIST (300 steps, batch 256, configs/fashion-mnist.yaml on the GPU)"
  report ""
  report "| run | last loss | zero-shot top-1 | samples/s | step ms | data wait ms | compute ms |"
  report "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  for r in fp32 bf16 resumed; do
    report "| $r | $(metric $r loss) | $(metric $r zero_shot_top1) | $(mean_metric $r samples_per_second) | $(mean_metric $r step_time_ms) | $(mean_metric $r data_wait_ms) | $(mean_metric $r compute_ms) |"
  done
  report ""
  report "## Contrastive loss, forward + backward, D = 512"
  report ""
  report "duet (\`duet bench loss --device cuda\`, CUDA events, the caching allocator's peak):"
  report ""
  report "| impl | loss | N | M | D | dtype | tile | fwd+bwd ms | peak extra MiB | loss value |"
  report "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |"
  for r in "${BENCH_ROWS[@]}"; do
    report "$r"
  done
  report ""
  report "PyTorch in the same run (\`scripts/bench_loss_torch.py\`):"
  report ""
  grep -E '^\|' "$WORK/logs/torch_bench.log" 2>/dev/null >>"$REPORT"
  report ""
fi
report "Logs: gpu_check.log beside this report (every step's output)."
log "report: $REPORT ($(elapsed) s)"
cat "$REPORT"
exit $FAILED
