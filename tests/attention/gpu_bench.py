"""GPU timing of the Triton FlashAttention kernels against PyTorch SDPA's flash and cuDNN backends.

Not a test (pytest does not collect it): run by hand on a machine with a CUDA device,
``python tests/attention/gpu_bench.py OUT.json [--sweep]``. Prints one line per measurement and
writes them all to ``OUT.json``. FLOPs follow the FlashAttention papers' convention: forward
$4 B H N^2 d$ (halved when causal), backward 2.5 times the forward.
"""

from __future__ import annotations

import json
import sys

import torch
import triton
from torch.nn.attention import SDPBackend, sdpa_kernel

import shiyan.attention.flash_triton as ft


def flops(b: int, h: int, n: int, d: int, causal: bool, mode: str) -> float:
    f = 4.0 * b * h * n * n * d / (2 if causal else 1)
    return f if mode == "fwd" else 3.5 * f


def timed(fn, mode, q, k, v, g) -> float:
    if mode == "fwd":
        with torch.no_grad():
            return triton.testing.do_bench(fn, warmup=25, rep=100)

    def step():
        fn().backward(g)

    return triton.testing.do_bench(step, warmup=25, rep=100, grad_to_none=[q, k, v])


def ours(q, k, v, causal, tune=None):
    if tune is None:
        return lambda: ft.flash_attention_triton(q, k, v, causal=causal)
    tau = q.shape[-1] ** -0.5
    return lambda: _Tuned.apply(q, k, v, causal, tau, tune)


class _Tuned(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, causal, scale, tune):
        out, lse2 = ft._forward(q, k, v, causal, scale, None, None, tune)
        ctx.save_for_backward(q, k, v, out, lse2)
        ctx.args = (causal, scale, tune)
        return out

    @staticmethod
    def backward(ctx, do):
        causal, scale, tune = ctx.args
        return (*ft._backward(do, *ctx.saved_tensors, causal, scale, None, None, tune), None, None, None)


def sdpa(backend, q, k, v, causal):
    def fn():
        with sdpa_kernel(backend):
            return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)

    return fn


def inputs(n: int, d: int, dtype=torch.bfloat16):
    tokens, width = 16384, 2048  # batch * N = 16k tokens, H * d = 2048 (as in the FA-2 paper)
    b, h = max(1, tokens // n), width // d
    gen = torch.Generator(device="cuda").manual_seed(0)
    q, k, v = (torch.randn(b, h, n, d, device="cuda", dtype=dtype, generator=gen).requires_grad_() for _ in range(3))
    g = torch.randn(b, h, n, d, device="cuda", dtype=dtype, generator=gen)
    return b, h, q, k, v, g


def main() -> None:
    out_path = sys.argv[1]
    rows = []
    print("device:", torch.cuda.get_device_name(0), "torch", torch.__version__, "triton", triton.__version__)
    if "--sweep" in sys.argv:
        for d in (64, 128):
            b, h, q, k, v, g = inputs(8192, d)
            for mode in ("fwd", "fwd+bwd"):
                for bm, bn, w, s in ((128, 64, 4, 3), (128, 64, 8, 3), (128, 128, 8, 3), (64, 64, 4, 3), (128, 32, 4, 4),
                                     (64, 64, 8, 2), (64, 128, 8, 2), (128, 64, 8, 2), (32, 64, 4, 2)):  # fmt: skip
                    tune = {"BLOCK_M": bm, "BLOCK_N": bn, "num_warps": w, "num_stages": s}
                    try:
                        ms = timed(ours(q, k, v, False, tune), mode, q, k, v, g)
                    except Exception as e:  # noqa: BLE001 -- out of resources for this tile shape
                        print("sweep", d, mode, tune, "failed", type(e).__name__)
                        continue
                    tf = flops(b, h, 8192, d, False, mode) / ms / 1e9
                    print(f"sweep d={d} {mode} {tune} {tf:.0f} TFLOP/s")
                    rows.append({"sweep": True, "d": d, "mode": mode, **tune, "tflops": tf})
    for d in (64, 128):
        for causal in (False, True):
            for n in (2048, 4096, 8192, 16384):
                b, h, q, k, v, g = inputs(n, d)
                for mode in ("fwd", "fwd+bwd"):
                    for name, fn in (
                        ("triton (ours)", ours(q, k, v, causal)),
                        ("sdpa-flash", sdpa(SDPBackend.FLASH_ATTENTION, q, k, v, causal)),
                        ("sdpa-cudnn", sdpa(SDPBackend.CUDNN_ATTENTION, q, k, v, causal)),
                    ):
                        try:
                            ms = timed(fn, mode, q, k, v, g)
                        except Exception as e:  # noqa: BLE001 -- a backend may not support a shape
                            print(name, d, causal, n, mode, "failed", type(e).__name__, str(e)[:80])
                            continue
                        tf = flops(b, h, n, d, causal, mode) / ms / 1e9
                        row = {"impl": name, "d": d, "causal": causal, "n": n, "mode": mode, "ms": ms, "tflops": tf}
                        print(json.dumps(row))
                        rows.append(row)
    with open(out_path, "w") as f:
        json.dump({"device": torch.cuda.get_device_name(0), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
