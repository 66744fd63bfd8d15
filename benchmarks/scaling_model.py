"""A scaling model of fastae's training step, for machines with more cores than the one at hand.

    python benchmarks/scaling_model.py [--data ../shared/data/mnist.npz] [--model tutorial|deep]

A step of batch b on T threads (csrc/src/training.cpp) runs T shards of b/T samples in parallel
(forward and backward, each into its own gradient buffer; the layers' W packed for the products
once a step, shared by the shards), then sums the T buffers and applies the optimizer, both split
over the T threads by slices of the P parameters. So

    step(T) = shard(b / T) + fixed / T + reduce(P, T) + sync(T)

- fixed: what a step costs whatever its samples (the optimizer pass over the P parameters, the
  packing of the layers' W, the gather's and the head's per-step parts), measured as the intercept
  of the one-thread step time against the batch size: a line through the step times of one-thread
  fits at batch sizes 32 and up, where the products run near their full rate;
- shard(s): one shard's forward and backward at s samples, measured on one core as the step time
  of a one-thread fit at batch size s minus `fixed`, at every shard size the prediction uses (b/T
  for T up to 64, down to 4 samples): small shards multiply narrow matrices, below the products'
  full rate, and a line through the large sizes would hide that. Two bounds hold it where noise
  in `fixed` would break it: below the line's sizes at least the line's per-sample rate times s,
  and never less than a smaller shard's;
- reduce(P, T): each thread sums T slices of P / T floats: P floats read per buffer in all, so
  (T - 1) * P / T reads per thread at the measured rate of a one-core sum (the vectorised add of
  two float buffers, timed here with NumPy, which reads at the same memory rate). From 4 threads
  (training.cpp: kDeferShards) the shards leave the layers' weight gradients to the sum's pass,
  which runs their products (the same work the shards would do, so it stays in shard(b / T),
  spread over the T threads) and sums only the rest of the buffers: the biases, and the first
  layer's dW where its sparse pass scatters sample by sample (up to 64 outputs: the tutorial's);
- sync(T): what the 2-thread step costs beyond the other terms, fitted to the 2-thread measurement
  and kept constant for more threads. It is not only the team's fork/join: two 1-thread fits run
  side by side (fresh processes that share nothing but the machine) each run slower than one
  alone, by a factor c measured here. So a second form of the model scales that part with the
  shard, (c - 1) * shard(b / T), and keeps only the rest of sync constant (the update and the sum
  not halving on two cores, the fork/join). The first form is the pessimistic one where c holds;
  the second the optimistic one, as it takes c to stay as measured on 2 cores (more cores sharing
  one L3 and memory may raise it).

Its one free term (sync) is fitted to the measured 2-thread step at the batch size asked for; the
model is then checked against 2-thread measurements at half and twice that batch size, and predicts
4 to 64 threads. Every measurement is taken --rounds times, the rounds one after the other and each
round going through all of them, and the medians are used: on a shared machine the speed moves by
10-40% from one minute to the next, and measuring the terms at different moments once each made
the fit (and its sync term) follow the moments, not the code. It
assumes every thread has its own core, that the shards' memory traffic fits the machine's
bandwidth, and equal shards; it ignores cross-socket effects. Its limits are printed with it.

A third form needs no composition: `epoch_bench --solo` (a build with -DFASTAE_BUILD_BENCHMARKS=ON,
--epoch-bench) runs each step's T shards one after another on one core, with everything a T-thread
step does (the shared W packing, the T gradient buffers, their sum, the update's slices): the work
of T shards, measured. Spread over T cores and with the 2-thread team step's rest added, it is
the pessimistic bound: one core's caches then hold all T shards' buffers, which T cores' caches
share out.

A fourth form is the third from ratios measured in turns (`step_phases`, the same build,
--step-phases): in one process, a 1-thread session, the T-shard solo one and (at 2) the team step
24 steps each in turn over the same batches, so the work of T shards over one shard's and the
2-thread rest over one shard's step are each taken in the same minutes: the third form's terms
come from runs minutes apart, and its rest follows the minute.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

import fastae

MODELS = {"tutorial": (64,), "deep": (256, 64)}
THREADS = (1, 2, 4, 8, 16, 32, 64)


def load(path):
    with np.load(path) as d:
        return d["x_train"].reshape(-1, 784).astype(np.float32) / np.float32(255)


def epoch_seconds(X, hidden, batch, threads, epochs=4):
    """Median engine seconds per epoch (the fit's own epoch timer) after one warm-up epoch."""
    ae = fastae.Autoencoder(hidden_layer_sizes=hidden, batch_size=batch, epochs=epochs + 1, n_threads=threads,
                            random_state=0).fit(X)
    return float(np.median(ae.history_["seconds"][1:])), ae._model.n_params


# One 1-thread fit in a process of its own, started at a given wall time (so that two such
# processes run side by side); prints the median engine seconds per epoch after the first.
SIDE_BY_SIDE_CHILD = """
import sys, time, numpy as np, fastae
path, rows, batch, start = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
hidden = tuple(int(h) for h in sys.argv[5].split(","))
with np.load(path) as d:
    X = d["x_train"].reshape(-1, 784)[:rows].astype(np.float32) / np.float32(255)
time.sleep(max(0.0, start - time.time()))
ae = fastae.Autoencoder(hidden_layer_sizes=hidden, batch_size=batch, epochs=5, n_threads=1, random_state=0).fit(X)
print(float(np.median(ae.history_["seconds"][1:])))
"""


def side_by_side_penalty(path, hidden, rows, batch):
    """Epoch seconds of a 1-thread fit at `batch` run alone and run with a twin on the other core,
    both in fresh processes started the same way: the ratio is what sharing the machine (memory,
    caches, the hypervisor) costs work that shares nothing else."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    def run(n):
        start = time.time() + 3.0  # after every child has loaded its data
        args = [sys.executable, "-c", SIDE_BY_SIDE_CHILD, path, str(rows), str(batch), str(start),
                ",".join(map(str, hidden))]
        procs = [subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env) for _ in range(n)]
        return [float(p.communicate()[0]) for p in procs]
    alone = run(1)[0]
    together = run(2)
    return alone, together


def solo_steps(epoch_bench, raw, deep, batch, threads, rounds):
    """Median ms per step of epoch_bench at each thread count: with --solo (the T shards of each
    step one after another on one core: what they cost in all) and, for 2 threads, the team."""
    runs = [(T, True) for T in threads] + [(2, False)]
    times = {run: [] for run in runs}
    for _ in range(rounds):
        for T, solo in runs:
            cmd = [epoch_bench, "--threads", str(T), "--epochs", "3", "--batch", str(batch), "--data", raw]
            out = subprocess.run(cmd + (["--deep"] if deep else []) + (["--solo"] if solo else []),
                                 capture_output=True, text=True, check=True).stdout
            epoch = float(out.strip().splitlines()[-1].split("median")[1].split()[0])
            times[(T, solo)].append(epoch / -(-60000 // batch) * 1e3)
    return {run: float(np.median(v)) for run, v in times.items()}


def phase_ratios(step_phases, raw, deep, batch, threads, rounds, turns):
    """The fourth form's measurements, from step_phases (benchmarks/step_phases.cpp), each a ratio
    taken within one process whose sessions step in turns, so that the machine's moment cancels:
    the work of T shards on one core over one shard's (its solo and 1-thread step medians), at each
    T past 1, and the 2-thread team step's rest over one shard's step (the team step less half the
    2-shard solo's). Medians of the rounds."""
    work, rest = {T: [] for T in threads if T > 1}, []
    for _ in range(rounds):
        for T in sorted(work):
            cmd = [step_phases, "--threads", str(T), "--turns", str(turns), "--batch", str(batch), "--data", raw]
            cmd += (["--deep"] if deep else []) + ([] if T == 2 else ["--no-team"])
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            steps = {}
            for line in out.splitlines():
                for key in ("1 thread", "team", "solo"):
                    if line.startswith("  " + key):
                        steps[key] = float(line.split()[-1])
            work[T].append(steps["solo"] / steps["1 thread"])
            if T == 2:
                rest.append((steps["team"] - steps["solo"] / 2) / steps["1 thread"])
    return {T: float(np.median(v)) for T, v in work.items()}, float(np.median(rest))


def sum_rate(P, repeats=50):
    """Seconds to add one float32 buffer of P values into another, on one core (best of repeats)."""
    a, b = np.ones(P, dtype=np.float32), np.ones(P, dtype=np.float32)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        np.add(a, b, out=a)
        best = min(best, time.perf_counter() - t)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data",
                                                   "mnist.npz"))
    ap.add_argument("--model", choices=list(MODELS), default="tutorial")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--rows", type=int, default=30000, help="training rows (fewer: a faster run)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of all the measurements (medians are used)")
    ap.add_argument("--epoch-bench", default=os.path.join(os.path.dirname(__file__), "..", "build", "bench",
                                                          "epoch_bench"),
                    help="the epoch_bench binary (a build with -DFASTAE_BUILD_BENCHMARKS=ON): when present, the "
                         "shards' total work at each T is measured with it (--solo) for a third, upper bound")
    ap.add_argument("--step-phases", default=os.path.join(os.path.dirname(__file__), "..", "build", "bench",
                                                          "step_phases"),
                    help="the step_phases binary (the same build): when present, a fourth form from ratios measured "
                         "in turns within one process (the work of T shards over one shard's, the 2-thread rest)")
    ap.add_argument("--turns", type=int, default=8, help="turns of 24 steps in each step_phases run")
    ap.add_argument("--measure-threads", type=int, nargs="*", default=[],
                    help="thread counts past 2 to measure at batch b as well (those up to the CPUs available), "
                         "each set beside the model's forms: the validation on a machine with the cores")
    ap.add_argument("--side-by-side-rounds", type=int, default=3,
                    help="rounds of the shared-machine penalty (a 1-thread fit alone, then two at once)")
    args = ap.parse_args()
    X = load(args.data)[:args.rows]
    hidden, b, n = MODELS[args.model], args.batch, args.rows
    print(f"model 784-{'-'.join(map(str, hidden))}-...-784, batch {b}, {n} rows; {os.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.1f}")

    # Rounds of every measurement: 1 thread at every shard size the prediction needs and at the
    # sizes of the line fit (per-step fixed cost), 2 threads at b, b / 2 and 2 b.
    measure = sorted({T for T in args.measure_threads if 2 < T <= fastae.available_cpus()})
    threads_all = sorted(set(THREADS) | set(measure))
    shard_sizes = sorted({b // T for T in threads_all if b // T >= 4})
    fit_sizes = sorted({s for s in (32, 64, 128, b) if s >= 32})
    sizes = sorted(set(shard_sizes) | set(fit_sizes))
    runs = [(s, 1) for s in sizes] + [(s, 2) for s in (b, b // 2, 2 * b)] + [(b, T) for T in measure]
    times = {run: [] for run in runs}
    for _ in range(args.rounds):
        for s, threads in runs:
            seconds, P = epoch_seconds(X, hidden, s, threads)
            times[(s, threads)].append(seconds / -(-n // s))
    step = {run: float(np.median(v)) for run, v in times.items()}
    step_1 = {s: step[(s, 1)] for s in sizes}
    slope, intercept = np.polyfit(fit_sizes, [step_1[s] for s in fit_sizes], 1)
    print(f"medians of {args.rounds} rounds (each round's values in brackets), ms/step:")
    for s, threads in runs:
        print(f"  b={s}, {threads} thread(s): {step[(s, threads)] * 1e3:.3f} "
              f"[{', '.join(f'{v * 1e3:.3f}' for v in times[(s, threads)])}]")
    print(f"  line fit (1 thread, batch {', '.join(map(str, fit_sizes))}): {slope * 1e6:.2f} us per sample + "
          f"{intercept * 1e3:.3f} ms per step (update, W packing, gather and head overheads); P = {P} parameters")
    # One shard's forward and backward at each measured size: the 1-thread step less the fixed
    # cost, held to two bounds a noisy fit can break. A shard smaller than the line's sizes runs
    # its samples no faster than the line's rate (it multiplies narrower matrices: slope * s is a
    # floor; a measured value under it means the intercept came out too large for that size), and
    # a larger shard takes no less time than a smaller one. A run whose intercept put the 8-sample
    # shard below the 4-sample one made the model's forms run away at 32 and 64 threads without
    # these bounds.
    measured = {s: step_1[s] - intercept for s in sizes}
    bounded, floor_hits = {}, []
    for s in sizes:  # ascending
        floor = slope * s if s < min(fit_sizes) else 0.0
        value = max(measured[s], floor, bounded[max(bounded)] if bounded else 0.0)
        if value > measured[s]:
            floor_hits.append(s)
        bounded[s] = value

    def shard(samples):  # interpolated between the measured sizes
        return float(np.interp(samples, sizes, [bounded[s] for s in sizes]))

    print("  one shard's forward and backward, measured (1-thread step less the fixed cost) against the line:")
    for s in shard_sizes:
        raised = f", raised from {measured[s] * 1e3:.3f} by the bounds" if s in floor_hits else ""
        print(f"    {s:4d} samples: {shard(s) * 1e3:.3f} ms, {shard(s) / s * 1e6:.2f} us a sample "
              f"(line: {slope * 1e6:.2f}){raised}")

    add = sum_rate(P)
    print(f"  summing two {P}-float buffers on one core: {add * 1e3:.3f} ms")

    # The parameters the sum still reads from every buffer once the weight gradients are deferred.
    widths = [784, *hidden, *reversed(hidden[:-1]), 784]
    scatters = hidden[0] <= 64 or (hidden[0] <= 192 and hidden[0] % 16 == 0)  # sparse_input.cpp: scatters
    summed = sum(widths[1:]) + (784 * hidden[0] if scatters else 0)
    print(f"  from 4 threads the sum reads {summed} of the {P} parameters from every buffer (the rest deferred)")

    def reduce_ms(T):  # each thread: T - 1 additions of its slice of what is summed
        return add * (summed / P if T >= 4 else 1.0) * (T - 1) / T

    def predict(T, sync):
        return shard(b / T) + intercept / T + reduce_ms(T) + sync

    step_1b, step_2 = step_1[b], step[(b, 2)]
    sync = max(0.0, step_2 - predict(2, 0.0))
    print(f"\nat batch {b}: 1 thread {step_1b * 1e3:.3f} ms/step, 2 threads {step_2 * 1e3:.3f} ms/step "
          f"({step_1b / step_2:.2f}x); the model without sync predicts {predict(2, 0.0) * 1e3:.3f} ms at 2 threads, "
          f"so sync = {sync * 1e3:.3f} ms per step")
    # Part of sync is the machine's own: two 1-thread fits side by side, each at the 2-thread
    # shard size, each slower than one alone. That part grows with the work of a shard, so a
    # second form of the model scales it with the shard (factor c) and keeps only the rest of
    # sync constant: the first form (all of sync constant) is the pessimistic one for it, the
    # second the optimistic one (it takes c to stay as measured on 2 cores).
    ratios = []
    for _ in range(args.side_by_side_rounds):
        alone, together = side_by_side_penalty(args.data, hidden, n, b // 2)
        ratios.append(float(np.mean(together)) / alone)
        print(f"  side by side at batch {b // 2}, 1 thread each: alone {alone:.3f} s/epoch, two at once "
              f"{', '.join(f'{t:.3f}' for t in together)} ({ratios[-1]:.3f}x)")
    c = max(1.0, float(np.median(ratios)))
    shared_part = (c - 1.0) * shard(b / 2)
    rest = max(0.0, sync - shared_part)
    print(f"  shared-machine factor c = {c:.3f} (median of {len(ratios)}): {shared_part * 1e3:.3f} ms of sync at "
          f"2 threads, the rest {rest * 1e3:.3f} ms (the update and sum not halving, the team's fork/join)")

    def predict_shared(T):
        return predict(T, 0.0) + (c - 1.0) * shard(b / T) + rest if T > 1 else predict(1, 0.0)

    # The check: sync was fitted at batch b; the model then predicts other batch sizes at 2 threads.
    print("\ncheck at 2 threads, other batch sizes (sync fitted at batch %d only), both forms:" % b)
    for other in (b // 2, 2 * b):
        measured = step[(other, 2)]
        base = shard(other / 2) + intercept / 2 + add / 2
        forms = (("sync constant", base + sync), ("c scaled", base + (c - 1.0) * shard(other / 2) + rest))
        for name, predicted in forms:
            print(f"  batch {other}, {name}: measured {measured * 1e3:.3f} ms/step, predicted {predicted * 1e3:.3f} "
                  f"({(predicted / measured - 1) * 100:+.1f}%)")
    print("\n| threads | predicted ms/step | speed-up over 1 thread | shard | fixed / T | reduce | sync "
          "| c-scaled form: ms/step | speed-up |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    forms = {}  # T: (sync constant, c scaled[, work / T + rest]), ms per step
    for T in threads_all:
        t = predict(T, sync if T > 1 else 0.0)
        t2 = predict_shared(T)
        forms[T] = [t * 1e3, t2 * 1e3]
        print(f"| {T} | {t * 1e3:.3f} | {step_1b / t:.2f}x | {shard(b / T) * 1e3:.3f} | {intercept / T * 1e3:.3f} | "
              f"{reduce_ms(T) * 1e3:.3f} | {(sync if T > 1 else 0.0) * 1e3:.3f} | {t2 * 1e3:.3f} | "
              f"{step_1b / t2:.2f}x |")
    if os.path.exists(args.epoch_bench) and n > 0:
        # A third form from the work itself: epoch_bench --solo runs each step's T shards one after
        # another on one core, with the step's shared W packing, its T gradient buffers and their sum
        # (from 4 shards, the deferred products in the sum's pass): T shards' whole cost. Spread over
        # T cores: work(T) / T + the 2-thread rest (the team's 2-thread step less work(2) / 2). One
        # core's caches then hold what T cores' caches would (the T shards' buffers), so this form
        # is the pessimistic bound.
        with tempfile.NamedTemporaryFile(suffix=".f32") as f:
            load(args.data).tofile(f.name)  # all 60000 rows, as epoch_bench reads them
            solo = solo_steps(args.epoch_bench, f.name, args.model == "deep", b, threads_all, args.rounds)
        rest_solo = max(0.0, solo[(2, False)] - solo[(2, True)] / 2)
        print(f"\nepoch_bench (60000 rows, {args.rounds} rounds): the T shards of a step on one core (--solo), "
              f"ms per step; the 2-thread team step {solo[(2, False)]:.3f} ms, so the rest = {rest_solo:.3f} ms")
        print("| threads | work of the T shards, one core | over 1 shard | work / T + rest | speed-up |")
        print("| ---: | ---: | ---: | ---: | ---: |")
        for T in threads_all:
            t3 = solo[(T, True)] / T + (rest_solo if T > 1 else 0.0)
            forms[T].append(t3)
            print(f"| {T} | {solo[(T, True)]:.3f} | {solo[(T, True)] / solo[(1, True)]:.2f}x | {t3:.3f} | "
                  f"{solo[(1, True)] / t3:.2f}x |")

    if os.path.exists(args.step_phases) and os.path.exists(args.epoch_bench) and n > 0:
        # A fourth form, the third's composition from ratios each measured within one process whose
        # sessions step in turns (benchmarks/step_phases.cpp): the work of T shards over one
        # shard's, spread over T cores, plus the 2-thread team step's rest, both over one shard's
        # step. The third form takes its terms from separate runs, minutes apart, and on a shared
        # machine whose speed moves by 30% within minutes its rest follows the minute.
        with tempfile.NamedTemporaryFile(suffix=".f32") as f:
            load(args.data).tofile(f.name)
            work, rest = phase_ratios(args.step_phases, f.name, args.model == "deep", b, threads_all, args.rounds,
                                      args.turns)
        rest = max(0.0, rest)
        print(f"\nstep_phases ({args.rounds} rounds of {args.turns} turns): the work of T shards on one core over "
              f"one shard's, and the 2-thread team step's rest, {rest:.3f} of one shard's step, both measured in turns")
        print("| threads | work of the T shards over 1 shard | work / T + rest, of one shard's step | speed-up |")
        print("| ---: | ---: | ---: | ---: |")
        for T in threads_all:
            ratio = 1.0 if T == 1 else work[T] / T + rest
            forms[T].append(step_1b * 1e3 * ratio)
            print(f"| {T} | {1.0 if T == 1 else work[T]:.2f}x | {ratio:.3f} | {1 / ratio:.2f}x |")

    if measure:
        # The validation: the forms were composed from 1- and 2-thread measurements alone; the
        # steps measured at more threads, in the same rounds, say how far each form is off.
        names = ["sync constant", "c scaled", "work / T + rest", "in turns"][:len(forms[1])]
        print(f"\nvalidation at batch {b}: measured steps at more threads against each form (ms/step, the form's "
              "error in brackets)")
        print("| threads | measured | speed-up | " + " | ".join(names) + " |")
        print("| ---: | ---: | ---: | " + " | ".join("---:" for _ in names) + " |")
        for T in measure:
            m = step[(b, T)] * 1e3
            cells = [f"{f:.3f} ({(f / m - 1) * 100:+.1f}%)" for f in forms[T]]
            print(f"| {T} | {m:.3f} | {step_1b * 1e3 / m:.2f}x | " + " | ".join(cells) + " |")

    print("\nThe forms bracket more cores: sync held constant (the first); its shared-machine part scaled with the "
          "shard at the factor c measured on these 2 cores (the second, optimistic: more cores sharing one L3 and "
          "memory may raise c); the shards' measured work spread over T cores (the third, when epoch_bench is built: "
          "pessimistic, as one core's caches then hold all T shards' buffers); the fourth, the third's terms as ratios "
          "measured in turns within one process (when step_phases is built), which the machine's moment moves least.")
    print("\nLimits: the reduction's cost does not fall with T (every thread reads T - 1 slices of what is "
          "summed), the deferred products are taken to split evenly over the threads (the sum's pass cuts them "
          "into about T tiles a layer), and the sync term is a lower bound; the fixed cost is taken to split over "
          "the threads (the update's slices and the shared W packing do; memory bandwidth shared by the cores is "
          "not modelled). Shards below the smallest measured size (4 samples) are extrapolated.")

if __name__ == "__main__":
    main()
