"""Navier-Stokes solver throughput: pdekit's NavierStokes2D against the FNO paper's generator algorithm.

Baseline, in the same run: a plain implementation of the algorithm of the FNO paper's data generator
(Li et al., ICLR 2021): vorticity-streamfunction, complex ``fft2``/``ifft2`` every step, four inverse
transforms for velocity and vorticity gradient, Crank-Nicolson for viscosity and explicit Euler for
advection and forcing, 2/3 dealiasing, ``dt = 1e-4``, float32.

pdekit: ``NavierStokes2D`` (real FFTs, ETDRK4, CFL-controlled step), float32.

Both start from the same developed FNO-forced flow (nu = 1e-3) and are compared against a float64
ETDRK4 reference with a small step. Reported per resolution: the relative L2 error at the final time,
member-steps per second, and simulated time units per second times members (the throughput that
matters at equal accuracy). The speedup is the ratio of the latter, median of ``--repeats`` runs.

Roofline: pdekit's achieved memory bandwidth, the bytes its timed ``solve`` moves over its median
time, against a measured device-to-device copy and (where the device is known) the datasheet peak.
The bytes are counted, not guessed: ``count_bytes`` runs the same ``solve`` once under a dispatch
mode that adds up, for every aten operation, the bytes of its tensor inputs (read once) and outputs
(written once), views free, plus the input copy torch makes before each complex-to-real cuFFT.
Each FFT counts as one pass over its input and output; cuFFT takes more than one pass at large
sizes, so the count is a lower bound and so is the fraction. ``bytes_per_step`` gives, beside it,
the fewest bytes a fully fused ETDRK4 step would move.

    python benchmarks/solver_throughput.py            # CPU (or CUDA when present)
    python benchmarks/solver_throughput.py --quick    # a smoke run
    python benchmarks/solver_throughput.py --device cuda --shape 256 --batch 64 --t-end 0.5   # the roofline case
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import time
from collections import Counter
from datetime import date

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from pdekit import Grid
from pdekit.solvers import NavierStokes2D, fno_forcing


def fno_generator_baseline(w0: torch.Tensor, forcing: torch.Tensor, viscosity: float, t_end: float, dt: float) -> tuple[torch.Tensor, int]:
    """Returns the vorticity at ``t_end`` and the step count: the FNO generator algorithm on ``w0 [batch, n, n]``."""
    n = w0.shape[-1]
    device = w0.device
    k = torch.fft.fftfreq(n, 1 / n, device=device)
    k_y, k_x = torch.meshgrid(k, k, indexing="ij")
    laplacian = 4 * math.pi**2 * (k_x**2 + k_y**2)
    inverse = torch.where(laplacian > 0, 1 / laplacian.clamp_min(1e-12), torch.zeros_like(laplacian))
    dealias = ((k_x.abs() <= (2 / 3) * (n // 2)) & (k_y.abs() <= (2 / 3) * (n // 2))).to(w0.dtype)
    forcing_hat = torch.fft.fft2(forcing)
    w_hat = torch.fft.fft2(w0)
    steps = math.ceil(t_end / dt - 1e-9)
    implicit = 1 + 0.5 * dt * viscosity * laplacian
    explicit = 1 - 0.5 * dt * viscosity * laplacian
    for _ in range(steps):
        psi_hat = w_hat * inverse
        u = torch.fft.ifft2(2j * math.pi * k_y * psi_hat).real
        v = torch.fft.ifft2(-2j * math.pi * k_x * psi_hat).real
        w_x = torch.fft.ifft2(2j * math.pi * k_x * w_hat).real
        w_y = torch.fft.ifft2(2j * math.pi * k_y * w_hat).real
        advection_hat = dealias * torch.fft.fft2(u * w_x + v * w_y)
        w_hat = (-dt * advection_hat + dt * forcing_hat + explicit * w_hat) / implicit
    return torch.fft.ifft2(w_hat).real, steps


def developed_flow(n: int, batch: int, spin_up: float, device) -> torch.Tensor:
    """Returns FNO-forced vorticity after ``spin_up`` time units from the FNO prior, ``[batch, 1, n, n]``, float64.

    The spin-up runs at ``m = min(n, 64)`` points per axis (resolved at nu = 1e-3) and the result is
    zero-padded in Fourier space: the same flow, represented on the finer grid.
    """
    m = min(n, 64)
    coarse = Grid((m, m))
    solver = NavierStokes2D(coarse, 1e-3, forcing=fno_forcing(coarse), cfl=0.5, device=device, dtype=torch.float64)
    w = solver.solve(solver.initial_condition(batch, seeds=range(batch)), [spin_up], dt=0.01)[:, 0]
    spectrum = torch.fft.rfft2(w) * (n / m) ** 2
    h = m // 2
    padded = torch.zeros((batch, 1, n, n // 2 + 1), dtype=spectrum.dtype, device=device)
    padded[..., :h, :h] = spectrum[..., :h, :h]
    padded[..., -h:, :h] = spectrum[..., -h:, :h]
    return torch.fft.irfft2(padded, s=(n, n))


def bytes_per_step(n: int, batch: int, itemsize: int = 4) -> int:
    """Returns the fewest bytes one fully fused ETDRK4 step would move, counting each FFT as one read and one write.

    Per right-hand side (4 per step): build 4 spectral fields from the stage (read 1, write 4),
    4 inverse real FFTs (read 4 spectral, write 4 real), the product (read 4 real, write 1),
    one forward FFT (read 1 real, write 1 spectral), the mask and forcing (read 1, write 1). Per step,
    the stage combinations read and write about 14 spectral arrays.
    """
    real = batch * n * n * itemsize
    spectral = batch * n * (n // 2 + 1) * 2 * itemsize
    per_rhs = (1 + 4) * spectral + (4 * spectral + 4 * real) + (4 * real + real) + (real + spectral) + 2 * spectral
    return 4 * per_rhs + 14 * spectral


def _nbytes(t: torch.Tensor) -> int:
    """Returns the bytes of memory ``t`` spans: a broadcast (stride-0) axis is stored once."""
    stored = math.prod(size for size, stride in zip(t.shape, t.stride(), strict=True) if stride != 0)
    return stored * t.element_size()


class ByteCounter(TorchDispatchMode):
    """Adds up the bytes every aten operation reads (tensor inputs) and writes (outputs); views move nothing.

    An in-place operation writes the tensor it mutates (and reads it too, except ``copy_``,
    ``fill_`` and ``zero_``). Before a complex-to-real cuFFT, torch copies the input (cuFFT may
    overwrite it): that copy, one read and one write, is added for CUDA inputs.
    """

    WRITE_ONLY = {"copy_", "fill_", "zero_"}
    ALLOCATION = {"empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided", "lift_fresh"}

    def __init__(self):
        super().__init__()
        self.read = self.written = 0
        self.ops: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = func._schema.name.split("::")[-1]
        view = any(r.alias_info is not None and not r.alias_info.is_write for r in func._schema.returns)
        if view or name in self.ALLOCATION:
            return out
        mutated = False
        for i, argument in enumerate(func._schema.arguments):
            value = args[i] if i < len(args) else kwargs.get(argument.name)
            tensors = [v for v in (value if isinstance(value, (list, tuple)) else [value]) if isinstance(v, torch.Tensor)]
            for t in tensors:
                if argument.alias_info is not None and argument.alias_info.is_write:
                    mutated = True
                    self.written += _nbytes(t)
                    if name not in self.WRITE_ONLY:
                        self.read += _nbytes(t)
                else:
                    self.read += _nbytes(t)
        if not mutated:
            for t in out if isinstance(out, (list, tuple)) else [out]:
                if isinstance(t, torch.Tensor):
                    self.written += _nbytes(t)
        if name == "_fft_c2r" and args[0].is_cuda:
            self.read += _nbytes(args[0])
            self.written += _nbytes(args[0])
        self.ops[name] += 1
        return out

    @property
    def total(self) -> int:
        return self.read + self.written


def count_bytes(fn) -> ByteCounter:
    """Runs ``fn()`` once and returns the bytes its aten operations moved (see ``ByteCounter``)."""
    with ByteCounter() as counter:
        fn()
    return counter


# Datasheet memory bandwidths (bytes/s) by device name: leads, beside the measured copy bandwidth.
DATASHEET_BANDWIDTH = {"H200": 4.8e12, "H100 80GB HBM3": 3.35e12, "H100 PCIe": 2.0e12, "A100-SXM4-80GB": 2.04e12, "A100-SXM4-40GB": 1.56e12}


def datasheet_bandwidth(name: str) -> float | None:
    """Returns the datasheet memory bandwidth of the device called ``name``, or None when it is not listed."""
    return next((b for key, b in DATASHEET_BANDWIDTH.items() if key in name), None)


def device_copy_bandwidth(device) -> float:
    """Returns the measured bytes per second (read plus written) of a large copy on ``device``: the practical memory roofline."""
    numel = (1 << 30 if device.type == "cuda" else 64 << 20) // 4  # far past the L2 (GPU) or last-level cache (CPU)
    x = torch.rand(numel, device=device)
    y = torch.empty_like(x)
    y.copy_(x)
    times = []
    for _ in range(10):
        _, seconds = timed(lambda: y.copy_(x), device)
        times.append(seconds)
    return 2 * numel * 4 / statistics.median(times)


def timed(fn, device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    result = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return result, time.perf_counter() - start


def relative_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a.double() - b).flatten(1).norm(dim=1) / b.flatten(1).norm(dim=1)).mean())


def benchmark(n: int, batch: int, t_end: float, repeats: int, cfl: float, device) -> dict:
    w0 = developed_flow(n, batch, spin_up=10.0, device=device)
    grid = Grid((n, n))
    forcing = fno_forcing(grid)
    reference = NavierStokes2D(grid, 1e-3, forcing=forcing, device=device, dtype=torch.float64)
    w_ref = reference.solve(w0, [t_end], dt=t_end / 64)[:, 0, 0]
    w_check = reference.solve(w0, [t_end], dt=t_end / 128)[:, 0, 0]

    solver = NavierStokes2D(grid, 1e-3, forcing=forcing, cfl=cfl, device=device, dtype=torch.float32)
    w0_32 = w0.float()
    base_times, ours_times = [], []
    for _ in range(repeats):
        (w_base, base_steps), seconds = timed(
            lambda: fno_generator_baseline(w0_32[:, 0], forcing.float().to(device), 1e-3, t_end, 1e-4), device
        )
        base_times.append(seconds)
        w_ours, seconds = timed(lambda: solver.solve(w0_32, [t_end], dt=t_end)[:, 0, 0], device)
        ours_times.append(seconds)
    ours_dt = min(t_end, cfl / float(solver.max_speed_per_spacing(solver.to_spectral(w0_32)).max()))
    ours_steps = math.ceil(t_end / ours_dt - 1e-9)
    base_s, ours_s = statistics.median(base_times), statistics.median(ours_times)
    row = dict(
        n=n,
        batch=batch,
        t_end=t_end,
        reference_self_error=relative_l2(w_check, w_ref),
        base_error=relative_l2(w_base, w_ref),
        ours_error=relative_l2(w_ours, w_ref),
        base_steps=base_steps,
        ours_steps=ours_steps,
        base_s=base_s,
        ours_s=ours_s,
        base_member_steps=batch * base_steps / base_s,
        ours_member_steps=batch * ours_steps / ours_s,
        base_member_time=batch * t_end / base_s,
        ours_member_time=batch * t_end / ours_s,
    )
    row["speedup"] = row["ours_member_time"] / row["base_member_time"]
    counted = count_bytes(lambda: solver.solve(w0_32, [t_end], dt=t_end))
    row["bytes"], row["bytes_per_step"], row["fused_bytes_per_step"] = counted.total, counted.total / ours_steps, bytes_per_step(n, batch)
    row["achieved_bandwidth"] = counted.total / ours_s
    row["copy_bandwidth"] = device_copy_bandwidth(device)
    if device.type == "cuda":
        row["peak_memory"] = torch.cuda.max_memory_allocated(device)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cfl", type=float, default=0.5)
    parser.add_argument("--quick", action="store_true", help="small sizes and short times: a smoke run")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--shape", type=int, default=None, help="one case: N x N points (with --batch and --t-end) instead of the default table"
    )
    parser.add_argument("--batch", type=int, default=8, help="members per solve for --shape")
    parser.add_argument("--t-end", type=float, default=0.05, help="simulated time for --shape")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: torch {torch.__version__} sees no CUDA device")
    if args.shape is not None:
        if args.shape < 8 or args.shape % 2 or args.batch < 1 or not args.t_end > 0:
            parser.error(f"--shape must be an even number >= 8, --batch >= 1 and --t-end > 0; got {args.shape}, {args.batch}, {args.t_end}")
        cases = [(args.shape, args.batch, args.t_end)]
    else:
        cases = [(64, 32, 0.2), (256, 8, 0.05)] if not args.quick else [(32, 4, 0.01)]
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    )
    peak = datasheet_bandwidth(name) if device.type == "cuda" else None
    print(f"# solver_throughput, {date.today()}, {device.type}: {name}, torch {torch.__version__}, repeats {args.repeats} (medians)")
    header = (
        "| grid | batch | T | error FNO-alg (dt=1e-4) | error pdekit (cfl={cfl}) | steps FNO / pdekit "
        "| member-steps/s FNO / pdekit | member-time/s FNO / pdekit | speedup |"
    )
    print(header.format(cfl=args.cfl))
    print("|" + "---|" * 9)
    rows = []
    for n, batch, t_end in cases:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        r = benchmark(n, batch, t_end, args.repeats, args.cfl, device)
        rows.append(r)
        print(
            f"| {n}² | {batch} | {t_end} | {r['base_error']:.2e} | {r['ours_error']:.2e} | {r['base_steps']} / {r['ours_steps']} "
            f"| {r['base_member_steps']:.0f} / {r['ours_member_steps']:.0f} | {r['base_member_time']:.3g} / {r['ours_member_time']:.3g} "
            f"| **{r['speedup']:.1f}x** |"
        )
        print(f"  (reference self-check, dt vs dt/2: {r['reference_self_error']:.1e})")
    print(
        "\n| grid | batch | float32 | counted MB/step | fused MB/step | ms/step | achieved GB/s | copy GB/s | roofline (copy) | roofline "
        "(datasheet) | peak memory |"
    )
    print("|" + "---|" * 11)
    for r in rows:
        ms = 1e3 * r["ours_s"] / r["ours_steps"]
        datasheet = f"{100 * r['achieved_bandwidth'] / peak:.0f}% of {peak / 1e12:.2f} TB/s" if peak else "n/a"
        memory = f"{r['peak_memory'] / 2**30:.2f} GiB" if "peak_memory" in r else "n/a"
        print(
            f"| {r['n']}² | {r['batch']} | yes | {r['bytes_per_step'] / 1e6:.1f} | {r['fused_bytes_per_step'] / 1e6:.1f} | {ms:.3f} "
            f"| {r['achieved_bandwidth'] / 1e9:.0f} | {r['copy_bandwidth'] / 1e9:.0f} | "
            f"**{100 * r['achieved_bandwidth'] / r['copy_bandwidth']:.0f}%** | {datasheet} | {memory} |"
        )
    print(
        "  counted: every aten operation of the timed solve reads its tensor inputs and writes its outputs once (views free, cuFFT's c2r "
        "input copy added);"
        " FFTs count one pass, so the fraction is a lower bound. fused: the fewest bytes a fully fused ETDRK4 step moves."
    )


if __name__ == "__main__":
    main()
