"""`clip_benchmark eval` and `duet eval` on the same dataset directory give the same table.

    python clip_benchmark_oracle.py --duet build/duet --bpe bpe_simple_vocab_16e6.txt.gz

Builds Fashion-MNIST with `duet data fashion-mnist` (single layout: its test/ split is a
CLIP_benchmark zero-shot classification set; pairs layout: retrieval/ is a CLIP_benchmark
retrieval set), trains two tiny CLIP models for 150 steps of 64 (28 px for the single images, 56 px
for the pairs, CLIP BPE tokenizer so OpenCLIP's default tokenizer gives duet's ids), exports each
with `duet export --format open_clip`, and evaluates each set twice:
  - `clip_benchmark eval --dataset wds/NAME --dataset_root DIR --model local-dir:EXPORT --no_amp`
  - `duet eval --checkpoint CKPT --dataset DIR --output result.json`
Then `clip_benchmark build` merges the two result files into one CSV.

Tolerance. The images are exactly the model's size, so both preprocessing stacks pass the
decoded pixels through unchanged (no resampling) and normalise them in float32; what remains is
float32 rounding in two implementations of the same network (LibTorch's and PyTorch's kernels,
~1e-6 on the embeddings). A metric can move only where two candidates' scores are that close:
the test allows 2 samples' worth (2/N for accuracies over N images, 2/T for recalls over T
texts) and prints the actual differences, which are expected to be 0.

Exit 0: passed; 1: a difference beyond the tolerance (printed); 77: clip_benchmark, open_clip
or torch is missing and CI is not set (skipped, with a WARN line); with CI=true a missing
package is a failure.
"""
import argparse
import csv
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

SKIP = 77


def need(*modules):
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as e:  # ImportError, or a broken install
            message = (f"Python package '{name}' is not available ({e}); install the test "
                       f"oracles with scripts/setup.sh --test-deps")
            if os.environ.get("CI", "").lower() == "true":
                print(f"FAIL: {message}")
                sys.exit(1)
            print(f"WARN: skipped: {message}")
            sys.exit(SKIP)


def run(cmd, **kwargs):
    print("$", " ".join(map(str, cmd)), flush=True)
    result = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise SystemExit(f"FAILED ({result.returncode}): {' '.join(map(str, cmd))}\n"
                         f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


def train_config(path, data_dir, image_size, patch_size, bpe, run_dir, steps, train_pattern):
    with open(path, "w") as f:
        f.write(f"""
model:
  name: tiny-oracle-{image_size}
  embed_dim: 64
  vision: {{image_size: {image_size}, patch_size: {patch_size}, width: 64, layers: 2, heads: 2}}
  text: {{context_length: 32, vocab_size: 49408, width: 64, layers: 2, heads: 2}}
tokenizer: {{type: clip_bpe, path: "{bpe}"}}
data:
  train: ["{data_dir}/{train_pattern}"]
  workers: 2
  shuffle_buffer: 2000
optim: {{lr: 0.002, weight_decay: 0.1}}
schedule: {{warmup_steps: 10}}
train: {{steps: {steps}, batch_size: 64, device: cpu, threads: 2, output_dir: "{run_dir}", run_name: run}}
logging: {{every_steps: 20, tensorboard: false}}
checkpoint: {{keep_last: 1}}
""")
    return path


# clip_benchmark 1.6.2's accuracy() calls float() on a one-element array, which NumPy >= 2.4
# rejects. Its CLI runs here with that one function replaced by the same formula ending in
# .item(); everything else (data reading, preprocessing, model, metrics) is clip_benchmark's.
CLIP_BENCHMARK = """
import runpy, sys
import clip_benchmark.metrics.zeroshot_classification as zc
def accuracy(output, target, topk=(1,)):
    pred = output.topk(max(topk), 1, True, True)[1].t()
    correct = pred.eq(target.view(1, -1).expand_as(pred))
    n = len(target)
    return [correct[:k].reshape(-1).float().sum(0).item() / n for k in topk]
zc.accuracy = accuracy
sys.argv = ["clip_benchmark"] + sys.argv[1:]
runpy.run_module("clip_benchmark.cli", run_name="__main__")
"""


def clip_benchmark(work, name, root, export, task):
    out = os.path.join(work, f"cb-{name}.json")
    run([sys.executable, "-c", CLIP_BENCHMARK, "eval", "--dataset", f"wds/{name}",
         "--dataset_root", root, "--model", f"local-dir:{export}", "--pretrained", "duet",
         "--task", task, "--no_amp", "--batch_size", "256", "--num_workers", "0",
         "--output", out, "--quiet"])
    return out


def duet_eval(duet, work, name, root, checkpoint):
    out = os.path.join(work, f"duet-{name}.json")
    run([duet, "--log-level", "warn", "eval", "--checkpoint", checkpoint, "--dataset", root,
         "--dataset-name", f"wds/{name}", "--model", "duet-tiny", "--pretrained", "duet",
         "--output", out])
    return out


def compare(label, cb_path, duet_path, counts, failures):
    cb = json.load(open(cb_path))
    dt = json.load(open(duet_path))
    for key in ("dataset", "task", "language"):
        if cb[key] != dt[key]:
            failures.append(f"{label}: {key} {cb[key]!r} vs {dt[key]!r}")
    print(f"\n{label}: {cb['dataset']} ({cb['task']})")
    print(f"| {'metric':<28} | {'clip_benchmark':>14} | {'duet':>10} | {'|diff|':>8} | {'allowed':>8} |")
    print(f"|{'-' * 30}|{'-' * 16}|{'-' * 12}|{'-' * 10}|{'-' * 10}|")
    if set(cb["metrics"]) != set(dt["metrics"]):
        failures.append(f"{label}: metric names {sorted(cb['metrics'])} vs {sorted(dt['metrics'])}")
    for name, expected in cb["metrics"].items():
        got = dt["metrics"].get(name)
        if expected is None or got is None:
            continue
        allowed = 2.0 / counts[name.split("_")[0] if "retrieval" in name else "images"]
        diff = abs(expected - got)
        print(f"| {name:<28} | {expected:>14.6f} | {got:>10.6f} | {diff:>8.2g} | {allowed:>8.2g} |")
        if diff > allowed:
            failures.append(f"{label}: {name} differs by {diff:.3g} (> {allowed:.3g})")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--duet", required=True)
    parser.add_argument("--bpe", required=True)
    parser.add_argument("--keep", help="keep the work directory here")
    args = parser.parse_args()
    need("clip_benchmark.cli", "open_clip", "torch", "webdataset", "sklearn")
    if not os.path.exists(args.bpe):
        print(f"FAIL: CLIP BPE vocabulary '{args.bpe}' not found")
        sys.exit(1)
    work = args.keep or tempfile.mkdtemp(prefix="duet-cb-oracle-")
    os.makedirs(work, exist_ok=True)
    duet = os.path.abspath(args.duet)
    try:
        single = os.path.join(work, "fashion-mnist")
        pairs = os.path.join(work, "fashion-mnist-pairs")
        run([duet, "--log-level", "warn", "data", "fashion-mnist", "--out", single])
        run([duet, "--log-level", "warn", "data", "fashion-mnist", "--layout", "pairs", "--out", pairs])

        failures = []
        results = []
        cases = [("fashion-mnist", single, single, 28, 7, "zeroshot_classification",
                  {"images": 10000}),
                 ("fashion-mnist-pairs-retrieval", os.path.join(pairs, "retrieval"), pairs, 56, 14,
                  "zeroshot_retrieval", {"images": 90, "image": 360, "text": 90})]
        for name, root, train_data, size, patch, task, counts in cases:
            run_dir = os.path.join(work, f"runs-{size}")
            config = train_config(os.path.join(work, f"train-{size}.yaml"), train_data, size, patch,
                                  os.path.abspath(args.bpe), run_dir, 150, "train/{000000..000011}.tar")
            run([duet, "--log-level", "warn", "train", "-c", config])
            checkpoint = sorted(os.listdir(os.path.join(run_dir, "run", "checkpoints")))[-1]
            checkpoint = os.path.join(run_dir, "run", "checkpoints", checkpoint)
            export = os.path.join(work, f"export-{size}")
            run([duet, "--log-level", "warn", "export", "--checkpoint", checkpoint, "--format",
                 "open_clip", "--out", export])
            cb_path = clip_benchmark(work, name, root, export, task)
            duet_path = duet_eval(duet, work, name, root, checkpoint)
            compare(name, cb_path, duet_path, counts, failures)
            results += [cb_path, duet_path]

        merged = os.path.join(work, "benchmark.csv")
        run([sys.executable, "-c", CLIP_BENCHMARK, "build", *results, "--output", merged])
        rows = list(csv.DictReader(open(merged)))
        print(f"\nclip_benchmark build: {len(rows)} rows, columns {sorted(rows[0])}")
        if len(rows) != 4:
            failures.append(f"clip_benchmark build merged {len(rows)} rows, expected 4")
        if failures:
            print("\n" + "\n".join(f"FAIL {f}" for f in failures))
            sys.exit(1)
        print("\nall checks passed")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
