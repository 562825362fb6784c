"""float32 against bfloat16 on this CPU: peaks, sampling, training and the U-Net's GFLOP/s (one table).

Run from the repository root (not an asv benchmark)::

    OMP_NUM_THREADS=1 python benchmarks/bf16.py

Rows (one torch thread):

* **peak**: GFLOP/s of a 2048 x 2048 matmul and of a 3x3 convolution (64 -> 64 channels,
  16 x 64 x 64) in float32 and in bfloat16 (best of 5), the machine's measured peaks;
* **sampling**: ``kolmogorov-sfm`` (its card's sampler) downscaling its 8 shipped example samples
  x 16 members with ``dtype="float32"`` and ``dtype="bfloat16"`` (best of 2), with the CRPS
  against the shipped truth (equal CRPS within 0.5 % is the bar for bfloat16 to be worth it);
* **training**: seconds per optimiser step of the shipped ``kolmogorov-sfm`` configuration on a
  batch of 16 pairs, float32 and bfloat16 autocast (mean of 5 after one warm-up);
* **U-Net GFLOP/s**: floating-point operations of one sampling run (counted by
  ``torch.utils.flop_counter``) over its wall time, against the measured peaks;
* **torch.compile**: the same float32 sampling (tensor level, ``net.sample``) with the flow
  network wrapped in ``torch.compile`` (inductor, ``dynamic=False``): the one-off compile time,
  the best of 2 compiled runs against the best of 2 eager runs, and the largest difference of the
  samples.
"""

from __future__ import annotations

import time

import torch

MODEL = "kolmogorov-sfm"


def _best(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def peaks() -> dict[str, dict[str, float]]:
    """Measured GFLOP/s of a matmul and a convolution, float32 and bfloat16."""
    out: dict[str, dict[str, float]] = {}
    n = 2048
    x = torch.randn(16, 64, 64, 64)
    w = torch.randn(64, 64, 3, 3)
    for dtype in (torch.float32, torch.bfloat16):
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        mm = _best(lambda a=a, b=b: a @ b, 5)
        xc, wc = x.to(dtype), w.to(dtype)
        conv = _best(lambda xc=xc, wc=wc: torch.nn.functional.conv2d(xc, wc, padding=1), 5)
        conv_flops = 2 * 16 * 64 * 64 * 64 * 64 * 9
        out[str(dtype).split(".")[1]] = {
            "matmul": 2 * n**3 / mm / 1e9,
            "conv": conv_flops / conv / 1e9,
        }
    return out


def sampling() -> dict[str, dict[str, float]]:
    """Time, CRPS and counted GFLOP of kolmogorov-sfm sampling, float32 and bfloat16."""
    from torch.utils.flop_counter import FlopCounterMode

    import xsfm
    from xsfm import metrics
    from xsfm.xr.examples import example_truth

    model = xsfm.load_model(MODEL)
    coarse, truth = model.example_input(), example_truth(model)
    rows = {}
    for dtype in ("float32", "bfloat16"):
        kw = {"model": model, "members": 16, "seed": 0, "dtype": dtype, "progress": False}
        coarse.sfm.downscale(**kw)  # warm-up
        seconds = _best(lambda kw=kw: coarse.sfm.downscale(**kw), 2)
        fine = coarse.sfm.downscale(**kw)
        crps = float(metrics.crps(fine["vorticity"], truth["vorticity"]).mean())
        with FlopCounterMode(display=False) as counter:
            coarse.sfm.downscale(**kw)
        rows[dtype] = {"seconds": seconds, "crps": crps, "gflop": counter.get_total_flops() / 1e9}
    return rows


def compiled() -> dict[str, float]:
    """Eager against ``torch.compile``d sampling of kolmogorov-sfm, float32, tensor level."""
    import xsfm
    from xsfm.sampling.rng import stream_generators

    model = xsfm.load_model(MODEL)
    net = model.network()
    x = torch.tensor(model.example_input()["vorticity"].values)[:, None].float()

    def run() -> torch.Tensor:
        with torch.inference_mode():
            return net.sample(x, stream_generators(0, range(x.shape[0]), 16), members=16)

    run()  # warm-up
    eager_s = _best(run, 2)
    eager = run()
    eager_net = net.net
    net.net = torch.compile(eager_net, dynamic=False)
    try:
        start = time.perf_counter()
        run()
        first = time.perf_counter() - start
        compiled_s = _best(run, 2)
        diff = float((run() - eager).abs().max())
    finally:
        net.net = eager_net
    return {"eager": eager_s, "compiled": compiled_s, "compile": first - compiled_s, "diff": diff}


def training(steps: int = 5) -> dict[str, float]:
    """Seconds per optimiser step of the shipped configuration, float32 and bfloat16 autocast."""
    import xsfm
    from xsfm.models.downscaling import build_downscaler

    config = dict(xsfm.load_model(MODEL).card.network)
    out = {}
    for dtype in ("float32", "bfloat16"):
        module = build_downscaler({**config, "dtype": dtype})
        opt = torch.optim.Adam(module.parameters(), lr=1e-4)
        gen = torch.Generator().manual_seed(0)
        coarse, fine = torch.randn(16, 1, 16, 16), torch.randn(16, 1, 64, 64)

        def step(module=module, opt=opt, gen=gen, coarse=coarse, fine=fine) -> None:
            loss, _ = module.loss(coarse, fine, gen)
            opt.zero_grad()
            loss.backward()
            opt.step()

        step()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        out[dtype] = (time.perf_counter() - start) / steps
    return out


def main() -> None:
    torch.set_num_threads(1)
    peak = peaks()
    samp = sampling()
    train = training()
    comp = compiled()
    print(f"float32 vs bfloat16 (torch {torch.__version__}, one thread)")
    print()
    print("| case | float32 | bfloat16 | bfloat16 / float32 |")
    print("|---|---|---|---|")
    for kind in ("matmul", "conv"):
        f, b = peak["float32"][kind], peak["bfloat16"][kind]
        print(f"| peak {kind} GFLOP/s | {f:.1f} | {b:.1f} | {b / f:.2f}x |")
    f, b = samp["float32"], samp["bfloat16"]
    print(f"| sampling {MODEL}, 8 samples x 16 members, s | {f['seconds']:.1f} | "
          f"{b['seconds']:.1f} | {f['seconds'] / b['seconds']:.2f}x the speed |")  # fmt: skip
    print(f"| CRPS against the shipped truth | {f['crps']:.6f} | {b['crps']:.6f} | "
          f"{100 * (b['crps'] / f['crps'] - 1):+.4f} % |")  # fmt: skip
    print(f"| training, s per step (batch 16) | {train['float32']:.2f} | {train['bfloat16']:.2f} | "
          f"{train['float32'] / train['bfloat16']:.2f}x the speed |")  # fmt: skip
    for dtype, peak_kind in (("float32", "float32"), ("bfloat16", "bfloat16")):
        rate = samp[dtype]["gflop"] / samp[dtype]["seconds"]
        frac = rate / peak[peak_kind]["conv"]
        print(f"| U-Net GFLOP/s while sampling ({dtype}) | {rate:.1f} | | {100 * frac:.0f} % of "
              f"the {peak_kind} conv peak |")  # fmt: skip
    print()
    print("| torch.compile, float32 sampling, 8 samples x 16 members | eager | compiled | "
          "compiled / eager |")  # fmt: skip
    print("|---|---|---|---|")
    print(f"| s per call | {comp['eager']:.1f} | {comp['compiled']:.1f} | "
          f"{comp['eager'] / comp['compiled']:.2f}x the speed |")  # fmt: skip
    print(f"| one-off compile, s | | {comp['compile']:.0f} | |")
    print(f"| largest difference of the samples, s-1 | | {comp['diff']:.1e} | |")


if __name__ == "__main__":
    main()
