"""Speed of FlowDAS on the paper's Lorenz-63 evaluation: 64 trajectories x 15 steps, N = 500, J = 21.

Prints wall times on one thread (``torch.set_num_threads(1)``) for one member and for ``--members``
members, through the public xarray API (``state.sfm.assimilate``)::

    OMP_NUM_THREADS=1 python studies/lorenz63_speed.py

All trajectories, members and the J endpoint draws of a step go through the drift network as one
batch, so the cost per member falls as members are added.
"""

from __future__ import annotations

import argparse
import time

import torch

import xsfm


def run(members: int, steps: int) -> float:
    ds = xsfm.datasets.lorenz63(trajectories=64, steps=15, seed=0, first_trajectory=1024)
    x0 = ds.state.isel(time=[0])
    start = time.perf_counter()
    x0.sfm.assimilate(ds.obs, members=members, steps=steps, seed=0)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--steps", type=int, default=500)
    args = parser.parse_args()
    torch.set_num_threads(1)
    xsfm.load_model("lorenz63-flowdas").network(
        "cpu"
    )  # load and verify the weights outside the timing
    one = run(1, args.steps)
    print(f"64 trajectories x 15 steps, N = {args.steps}, J = 21, 1 member: {one:.1f} s")
    many = run(args.members, args.steps)
    print(
        f"64 trajectories x 15 steps, N = {args.steps}, J = 21, {args.members} members: {many:.1f} s "
        f"({many / args.members:.1f} s per member)"
    )


if __name__ == "__main__":
    main()
