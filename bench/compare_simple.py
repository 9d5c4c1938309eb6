#!/usr/bin/python3
"""CPU time per trial of trialsim vs the numpy peer on the "simple" benchmark trial.

Runs `trialsim run bench/scenarios/simple.toml --threads 1` and bench/peers/simple_numpy.py on
this machine, interleaved, --repeats times each. Every run is a separate child process whose
CPU time (user + sys) is read from its own rusage (os.wait4). Each repeat runs every program at
two trial counts, N and N/10, and takes (CPU(N) - CPU(N/10)) / (0.9 N): the cost per trial with
start-up (loading the program, numpy and scipy, parsing the scenario) subtracted. The medians over
the repeats are reported, and the ratio numpy / trialsim (above 1: trialsim is faster).

It also compares power and mean estimate of the three analyses between the two programs (from
their largest runs), in Monte Carlo standard errors.

Usage (from anywhere; paths default to this checkout):
  /usr/bin/python3 bench/compare_simple.py [--trialsim build/trialsim] [--repeats 3] [--json out.json]
"""
import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
METHODS = ("completers_ttest", "change_ttest", "ancova")


def run_child(cmd, env=None):
    """Runs cmd; returns (user + sys CPU seconds of that child alone, from wait4, and wall seconds)."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)  # tell Popen it is reaped
        wall = time.perf_counter() - t0
        if p.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}:\n{err.read().decode(errors='replace')}")
    return ru.ru_utime + ru.ru_stime, wall


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trialsim", default=os.path.join(ROOT, "build", "trialsim"), help="trialsim binary (default: build/trialsim of this checkout)")
    ap.add_argument("--scenario", default=os.path.join(HERE, "scenarios", "simple.toml"))
    ap.add_argument("--peer", default=os.path.join(HERE, "peers", "simple_numpy.py"))
    ap.add_argument("--python", default="/usr/bin/python3", help="interpreter with numpy and scipy for the peer")
    ap.add_argument("--trialsim-trials", type=int, default=200000, help="N for trialsim (also runs N/10)")
    ap.add_argument("--numpy-trials", type=int, default=200000, help="N for the numpy peer (also runs N/10)")
    ap.add_argument("--repeats", type=int, default=3, help="repeats of each program (median reported)")
    ap.add_argument("--seed", type=int, default=20190401)
    ap.add_argument("--json", help="write the runs, medians and the agreement check as JSON")
    a = ap.parse_args(argv)
    if not os.access(a.trialsim, os.X_OK):
        ap.error(f"--trialsim: {a.trialsim} is not an executable; build it first "
                 "(cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build --target trialsim)")
    for n, flag in ((a.trialsim_trials, "--trialsim-trials"), (a.numpy_trials, "--numpy-trials")):
        if n < 100:
            ap.error(f"{flag} must be at least 100")

    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    tmp = tempfile.mkdtemp(prefix="compare_simple.")

    def cmd(prog, n, rep, out):
        seed = a.seed + rep
        if prog == "trialsim":
            return [a.trialsim, "run", a.scenario, "--threads", "1", "--reps", str(n), "--seed", str(seed),
                    "--quiet", "--json", out]
        return [a.python, a.peer, "--trials", str(n), "--seed", str(seed), "--quiet", "--json", out]

    sizes = {"trialsim": a.trialsim_trials, "numpy": a.numpy_trials}
    runs = []
    per_trial = {"trialsim": [], "numpy": []}
    load_before = os.getloadavg()
    for rep in range(a.repeats):
        order = ("trialsim", "numpy") if rep % 2 == 0 else ("numpy", "trialsim")
        for prog in order:
            hi = sizes[prog]
            lo = max(1, hi // 10)
            cpu = {}
            for n in (lo, hi):
                out = os.path.join(tmp, f"{prog}-{rep}-{n}.json")
                c, w = run_child(cmd(prog, n, rep, out), env)
                cpu[n] = c
                runs.append({"program": prog, "repeat": rep, "trials": n, "cpu_s": c, "wall_s": w, "json": out})
            us = 1e6 * (cpu[hi] - cpu[lo]) / (hi - lo)
            per_trial[prog].append(us)
            print(f"repeat {rep + 1}/{a.repeats}  {prog:<8}  CPU {cpu[lo]:.3f} s ({lo}) {cpu[hi]:.3f} s ({hi})  "
                  f"-> {us:.2f} us/trial", file=sys.stderr)
    load_after = os.getloadavg()

    med = {p: statistics.median(v) for p, v in per_trial.items()}
    ratio = med["numpy"] / med["trialsim"]
    last = {p: next(r["json"] for r in reversed(runs) if r["program"] == p and r["trials"] == sizes[p]) for p in sizes}
    summaries = {}
    for p, f in last.items():
        with open(f) as fh:
            summaries[p] = json.load(fh)
    shutil.rmtree(tmp, ignore_errors=True)
    internal = summaries["numpy"].get("us_per_trial")

    print(f"\nsimple trial, one thread, CPU (user+sys) per trial, start-up subtracted, median of {a.repeats}")
    print(f"{'program':<10}{'us/trial':>10}{'min':>10}{'max':>10}")
    for p in ("trialsim", "numpy"):
        v = per_trial[p]
        print(f"{p:<10}{med[p]:>10.2f}{min(v):>10.2f}{max(v):>10.2f}")
    print(f"ratio numpy/trialsim: {ratio:.3f}  ({'trialsim' if ratio > 1 else 'numpy'} is faster by "
          f"{max(ratio, 1 / ratio):.2f}x)")
    if internal is not None:
        print(f"(numpy peer's own process_time of its last {sizes['numpy']}-trial run: {internal:.2f} us/trial)")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} on {os.cpu_count()} CPUs "
          "(well above 0 means other work shared the machine)")

    agreement = {}
    print(f"\nagreement (trialsim {sizes['trialsim']} trials vs numpy {sizes['numpy']}), z = difference / combined MC SE")
    for m in METHODS:
        for k in ("power", "mean_estimate"):
            x = summaries["trialsim"]["analyses"][m][k]
            y = summaries["numpy"]["analyses"][m][k]
            z = (y["estimate"] - x["estimate"]) / math.hypot(x["mcse"], y["mcse"])
            agreement.setdefault(m, {})[k] = {"trialsim": x, "numpy": y, "z": z}
            print(f"  {m:<18}{k:<14} trialsim {x['estimate']:.4f} ({x['mcse']:.4f})  "
                  f"numpy {y['estimate']:.4f} ({y['mcse']:.4f})  z {z:+.2f}")

    if a.json:
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as f:
            json.dump({
                "scenario": os.path.relpath(a.scenario, ROOT),
                "trialsim": os.path.abspath(a.trialsim),
                "trialsim_version": summaries["trialsim"].get("trialsim_version"),
                "peer_versions": summaries["numpy"].get("versions"),
                "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "processor": platform.processor(),
                            "load_before": load_before, "load_after": load_after},
                "method": "CPU user+sys per child (wait4); per trial = (CPU(N) - CPU(N/10)) / (0.9 N); median of repeats",
                "trials": sizes,
                "us_per_trial": med,
                "us_per_trial_repeats": per_trial,
                "ratio_numpy_over_trialsim": ratio,
                "numpy_internal_us_per_trial": internal,
                "runs": [{k: v for k, v in r.items() if k != "json"} for r in runs],
                "agreement": agreement,
            }, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
