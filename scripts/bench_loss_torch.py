#!/usr/bin/env python3
"""The peers of `duet bench loss --device cuda`, measured the same way in the same run
(scripts/gpu_check.sh): PyTorch's own materialised CLIP loss, as OpenCLIP writes it, and the
cuBLAS GEMM that bounds any exact implementation from below.

  torch_materialised  logits = t * image @ text.T ([N, N], held in memory), then
                      (cross_entropy(logits, arange) + cross_entropy(logits.T, arange)) / 2,
                      forward + backward with gradients for both embeddings and t
  cublas_gemm         one [N, D] x [D, N] product in bf16 (torch.matmul -> cuBLAS); an exact
                      loss needs four such products (logits, and three in backward), so four
                      times this is the floor any implementation, fused or not, can reach

Time: CUDA events around each pass on the current stream, median of --repeats after one
warm-up. Memory: torch.cuda.max_memory_allocated during one pass minus what was allocated
before it (inputs resident, gradients counted), as duet reports the caching allocator's peak.
On the CPU (--device cpu, for gpu_check.sh --dry-run) the same code runs with wall-clock time
and no memory column.

Prints a Markdown table. Usage:
  bench_loss_torch.py [--device cuda] [--sizes 4096,16384,32768] [--dim 512]
                      [--dtypes float32,bfloat16] [--repeats 5]
"""
import argparse
import math
import statistics
import time

import torch


def timed(fn, device, repeats):
    fn()  # warm-up: cuBLAS handles, kernels, allocator pools
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append(1000.0 * (time.perf_counter() - t0))
    return statistics.median(times)


def peak_extra_mib(fn, device):
    if device.type != "cuda":
        return float("nan")
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated(device) - before) / 2**20


def materialised_loss(n, dim, dtype, device, repeats):
    gen = torch.Generator().manual_seed(0)
    def embeddings():
        x = torch.randn(n, dim, generator=gen)
        return (x / x.norm(dim=1, keepdim=True)).to(device=device, dtype=dtype).requires_grad_()
    image, text = embeddings(), embeddings()
    logit_scale = torch.tensor(math.log(1 / 0.07), device=device).requires_grad_()
    labels = torch.arange(n, device=device)
    value = {}

    def step():
        for leaf in (image, text, logit_scale):
            leaf.grad = None
        logits = logit_scale.exp() * image @ text.t()
        loss = (torch.nn.functional.cross_entropy(logits.float(), labels) +
                torch.nn.functional.cross_entropy(logits.t().float(), labels)) / 2
        loss.backward()
        value["loss"] = loss.detach()

    ms = timed(step, device, repeats)
    for leaf in (image, text, logit_scale):
        leaf.grad = None
    mib = peak_extra_mib(step, device)
    return ms, mib, float(value["loss"])


def gemm(n, dim, device, repeats):
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a = torch.randn(n, dim, device=device, dtype=dtype)
    b = torch.randn(dim, n, device=device, dtype=dtype)
    out = {}

    def step():
        out["c"] = a @ b

    ms = timed(step, device, repeats)
    del out["c"]
    return ms, 2.0 * n * n * dim / (ms * 1e-3) / 1e12


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--sizes", default="4096,16384,32768")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench_loss_torch.py: no CUDA device visible")
    sizes = [int(s) for s in args.sizes.split(",")]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"PyTorch {torch.__version__} on {name}; time: "
          f"{'CUDA events' if device.type == 'cuda' else 'wall clock'}, median of {args.repeats} "
          f"after one warm-up; memory: peak allocated above the inputs during one pass.\n")
    print("| impl | N | D | dtype | fwd+bwd ms | peak extra MiB | loss value | TFLOP/s |")
    print("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |")
    for n in sizes:
        for dtype_name in args.dtypes.split(","):
            dtype = getattr(torch, dtype_name)
            try:
                ms, mib, loss = materialised_loss(n, args.dim, dtype, device, args.repeats)
                print(f"| torch_materialised | {n} | {args.dim} | {dtype_name} | {ms:.2f} | "
                      f"{mib:.1f} | {loss:.6f} | |", flush=True)
            except RuntimeError as e:  # out of memory, mostly
                print(f"| torch_materialised | {n} | {args.dim} | {dtype_name} | failed: "
                      f"{str(e).splitlines()[0]} | | | |", flush=True)
            if device.type == "cuda":
                torch.cuda.empty_cache()
        ms, tflops = gemm(n, args.dim, device, args.repeats)
        gemm_dtype = "bfloat16" if device.type == "cuda" else "float32"
        print(f"| cublas_gemm (x1; floor = 4x) | {n} | {args.dim} | {gemm_dtype} | {ms:.3f} | | | "
              f"{tflops:.0f} |", flush=True)


if __name__ == "__main__":
    main()
