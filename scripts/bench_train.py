#!/usr/bin/env python3
"""Training throughput of the default config: duet vs the same model and loop in PyTorch.

duet: `build/duet train -c configs/fashion-mnist.yaml` for --steps steps (its data pipeline
decodes PNG shards with 2 workers on the same cores); samples/s from its progress lines after
the first logging window (warm-up).

PyTorch: OpenCLIP's CLIP class with the same shapes (patch 7, 4x128 vision, 2x128 text,
context 16, vocab 56, embed 128), OpenCLIP's ClipLoss, AdamW, the same batch of 256 and the same
intra-op threads; images are pre-decoded uint8 tensors (no decoding cost, which favours it).
OpenCLIP pools text at argmax(token id) rather than at the EOT id: the compute is the same.

Usage: .venv/bin/python scripts/bench_train.py [--steps 110] [--threads 2]
Needs open_clip_torch importable (`scripts/setup.sh --test-deps` installs it).
"""
import argparse
import gzip
import json
import os
import re
import subprocess
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IDX = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"


def duet_throughput(steps, threads):
    run = f"bench-train-{int(time.time())}"
    cmd = [os.path.join(ROOT, "build", "duet"), "train", "-c",
           os.path.join(ROOT, "configs", "fashion-mnist.yaml"),
           "--set", f"train.steps={steps}", "--set", "logging.every_steps=10",
           "--set", f"train.threads={threads}", "--set", f"train.run_name={run}",
           "--set", "eval.zero_shot.source=", "--set", "eval.zero_shot.classnames=",
           "--set", "eval.zero_shot.templates=", "--set", "schedule.warmup_steps=10"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
    rates = [float(m.group(2)) for m in
             re.finditer(r"step (\d+)/\d+ .* (\d+) samples/s", out.stderr)
             if int(m.group(1)) > 10]
    return sum(rates) / len(rates)


def pytorch_throughput(steps, threads):
    import open_clip
    from open_clip.loss import ClipLoss
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    with gzip.open(IDX, "rb") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    images = torch.from_numpy(images.copy())
    tokens = json.loads(subprocess.run(
        [os.path.join(ROOT, "build", "duet"), "tokenize", "-c",
         os.path.join(ROOT, "configs", "fashion-mnist.yaml"), "--json",
         "a photo of a t-shirt."], cwd=ROOT, capture_output=True, text=True,
        check=True).stdout.splitlines()[0])
    model = CLIP(embed_dim=128,
                 vision_cfg=CLIPVisionCfg(layers=4, width=128, head_width=32, patch_size=7,
                                          image_size=28, mlp_ratio=4.0),
                 text_cfg=CLIPTextCfg(context_length=16, vocab_size=56, width=128, heads=4,
                                      layers=2))
    loss_fn = ClipLoss()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98), eps=1e-6,
                            weight_decay=0.1)
    batch = 256
    text = torch.tensor([tokens] * batch, dtype=torch.long)
    mean, std = 0.2860, 0.3530
    timed = 0.0
    for step in range(steps):
        start = time.perf_counter()
        idx = torch.randint(0, images.shape[0], (batch,))
        x = ((images[idx].float() / 255.0 - mean) / std).unsqueeze(1).expand(-1, 3, -1, -1)
        img, txt, scale = model(x.contiguous(), text)
        loss = loss_fn(img, txt, scale)
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, 4.6052)
        if step >= 10:
            timed += time.perf_counter() - start
    return (steps - 10) * batch / timed, open_clip.__version__


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=110)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    duet = duet_throughput(args.steps, args.threads)
    torch_rate, version = pytorch_throughput(args.steps, args.threads)
    print(f"| trainer | samples/s (batch 256, {args.threads} threads) |")
    print("| --- | ---: |")
    print(f"| duet (PNG shards decoded by 2 loader workers) | {duet:.0f} |")
    print(f"| PyTorch {torch.__version__} + OpenCLIP {version} (pre-decoded tensors) | "
          f"{torch_rate:.0f} |")
    print(f"\nduet / PyTorch: {duet / torch_rate:.2f}x")


if __name__ == "__main__":
    main()
