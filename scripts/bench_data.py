#!/usr/bin/env python3
"""Data pipeline benchmark: duet's loader against PIL + torchvision, in the same run.

Pipeline on both sides: read WebDataset tar shards -> decode JPEG -> RandomResizedCrop(224,
scale=(0.9, 1.0), ratio=(3/4, 4/3), bicubic) -> to float tensor -> Normalize(CLIP mean/std)
-> batches of 64. duet: `duet data bench` (its loader with N worker threads). Python: a
torch DataLoader with N worker processes over an IterableDataset that reads the same shards
with tarfile and applies PIL + torchvision transforms (OpenCLIP's training transform).
Both measure from the first batch to the last, so start-up is not counted.

The JPEG shards are synthesised here (smooth random fields plus noise, 320-640 px per side,
quality 90, 4:2:0), so the benchmark needs no download.

Usage: .venv/bin/python scripts/bench_data.py [--duet build/duet] [--images 1500]
         [--samples 3000] [--workers 1 2] [--out data/bench]
Needs Pillow and torchvision==0.26.0 (scripts/setup.sh --test-deps installs them).
"""
import argparse
import io
import json
import os
import platform
import subprocess
import sys
import tarfile
import time

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, IterableDataset, get_worker_info
from torchvision import transforms

MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


def make_shards(out_dir, images, per_shard=500, seed=0):
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_shards = (images + per_shard - 1) // per_shard
    pattern = os.path.join(out_dir, "{%05d..%05d}.tar" % (0, n_shards - 1))
    done = os.path.join(out_dir, "done-%d.json" % images)
    if os.path.exists(done):
        return pattern
    for s in range(n_shards):
        with tarfile.open(os.path.join(out_dir, "%05d.tar" % s), "w") as tar:
            for i in range(s * per_shard, min(images, (s + 1) * per_shard)):
                w, h = int(rng.integers(320, 641)), int(rng.integers(320, 641))
                low = rng.random((h // 16 + 2, w // 16 + 2, 3)) * 255
                img = Image.fromarray(low.astype(np.uint8)).resize((w, h), Image.BICUBIC)
                arr = np.asarray(img).astype(np.int16) + rng.integers(-12, 13, (h, w, 3))
                buf = io.BytesIO()
                Image.fromarray(arr.clip(0, 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
                for name, data in (("%06d.jpg" % i, buf.getvalue()),
                                   ("%06d.txt" % i, b"a synthetic photo number %d" % i)):
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    with open(done, "w") as f:
        json.dump({"images": images}, f)
    return pattern


class TarImages(IterableDataset):
    """WebDataset-style reading: shards split across workers, then sample by sample."""

    def __init__(self, shards, transform):
        self.shards = shards
        self.transform = transform

    def __iter__(self):
        info = get_worker_info()
        shards = self.shards[info.id::info.num_workers] if info else self.shards
        while True:  # repeat like `duet data bench` does until enough samples
            for shard in shards:
                with tarfile.open(shard) as tar:
                    for member in tar:
                        if member.name.endswith(".jpg"):
                            data = tar.extractfile(member).read()
                            img = Image.open(io.BytesIO(data)).convert("RGB")
                            yield self.transform(img)


def bench_python(shards, workers, samples, batch=64):
    tf = transforms.Compose([
        transforms.RandomResizedCrop(224, scale=(0.9, 1.0),
                                     interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.ToTensor(),
        transforms.Normalize(MEAN, STD),
    ])
    loader = DataLoader(TarImages(shards, tf), batch_size=batch, num_workers=workers,
                        prefetch_factor=4)
    count, first, start = 0, None, None
    for b in loader:
        if first is None:
            first, start = b.shape[0], time.perf_counter()
        count += b.shape[0]
        if count >= samples:
            break
    return (count - first) / (time.perf_counter() - start)


def bench_duet(duet, pattern, workers, samples, extra=()):
    cmd = [duet, "--log-level", "warn", "data", "bench", pattern, "--workers", str(workers),
           "--image-size", "224", "--batch-size", "64", "--rrc-scale", "0.9", "1.0",
           "--samples", str(samples), "--json", *extra]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["images_per_second"]


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duet", default=os.path.join(root, "build", "duet"))
    ap.add_argument("--images", type=int, default=1500)
    ap.add_argument("--samples", type=int, default=3000)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--out", default=os.path.join(root, "data", "bench"))
    args = ap.parse_args()

    pattern = make_shards(args.out, args.images)
    n_shards = (args.images + 499) // 500
    shards = [os.path.join(args.out, "%05d.tar" % s) for s in range(n_shards)]
    rows = []
    for w in args.workers:
        full = bench_duet(args.duet, pattern, w, args.samples, ["--no-dct-scaling"])
        dct = bench_duet(args.duet, pattern, w, args.samples)
        pil = bench_python(shards, w, args.samples)
        rows.append((w, pil, full, dct))
    print("machine: %s, %d CPUs, Python %s, torch %s, torchvision %s, Pillow %s" % (
        platform.processor() or platform.machine(), os.cpu_count(), platform.python_version(),
        torch.__version__, __import__("torchvision").__version__, Image.__version__))
    print("date: %s" % time.strftime("%Y-%m-%d"))
    print("command: %s" % " ".join([os.path.relpath(sys.argv[0], root)] + sys.argv[1:]))
    print()
    print("| workers | PIL + torchvision (img/s) | duet, full decode (img/s) | speed-up "
          "| duet, DCT-scaled decode (img/s) | speed-up |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for w, pil, full, dct in rows:
        print("| %d | %.0f | %.0f | %.2fx | %.0f | %.2fx |" % (w, pil, full, full / pil, dct,
                                                              dct / pil))


if __name__ == "__main__":
    main()
