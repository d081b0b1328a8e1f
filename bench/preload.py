"""Does preloading tcmalloc and Intel OpenMP speed vLLM up on CPU? vLLM's CPU backend warns that neither
is preloaded "for best performance". This runs `bench/generate.py` (the pipeline's bootstrap stage and
raw vLLM on the same prompts) in fresh processes: without a preload, with each library, and with both,
all in one session on one machine, and prints tokens/s against the baseline of the same session.

    python bench/preload.py [--tcmalloc PATH] [--iomp PATH] [--num-instructions 64] [--repeat 2]

Defaults look for Debian's libtcmalloc-minimal4 (/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4)
and the `intel-openmp` wheel's libiomp5.so in this environment's lib/. A library not found is skipped."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def find(candidates: list[Path]) -> Path | None:
    return next((p for p in candidates if p.is_file()), None)


def run(preload: list[Path], n: int) -> dict[str, float]:
    env = dict(os.environ)
    if preload:
        env["LD_PRELOAD"] = ":".join(str(p) for p in preload)
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        subprocess.run([sys.executable, str(ROOT / "bench" / "generate.py"), "--num-instructions", str(n),
                        "--skip-one-round", "--hf-prompts", "0", "--json", f.name], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        rows = json.loads(Path(f.name).read_text())
    return {r["name"].split(" (")[0].split(",")[0]: r["tokens"] / r["seconds"] for r in rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tcmalloc", type=Path, default=find([Path("/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"),
                                                           Path("/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4")]))
    ap.add_argument("--iomp", type=Path, default=find([Path(sys.prefix) / "lib" / "libiomp5.so"]))
    ap.add_argument("--num-instructions", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=2, help="rounds over all settings (interleaved, against drift)")
    a = ap.parse_args()
    settings: dict[str, list[Path]] = {"none": []}
    if a.tcmalloc:
        settings["tcmalloc"] = [a.tcmalloc]
    if a.iomp:
        settings["intel-openmp"] = [a.iomp]
    if a.tcmalloc and a.iomp:
        settings["both"] = [a.tcmalloc, a.iomp]
    got: dict[str, list[dict[str, float]]] = {k: [] for k in settings}
    for _ in range(a.repeat):
        for name, libs in settings.items():
            got[name].append(run(libs, a.num_instructions))
    print(f"libraries: tcmalloc={a.tcmalloc}  intel-openmp={a.iomp}")
    print("| preload | pipeline tok/s | vs none | raw vLLM tok/s | vs none |\n|---|---:|---:|---:|---:|")
    base = {k: sum(r[k] for r in got["none"]) / len(got["none"]) for k in got["none"][0]}
    for name, rows in got.items():
        mean = {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}
        pipe, raw = mean["pipeline bootstrap"], mean["raw vLLM"]
        print(f"| {name} | {pipe:.1f} | x{pipe / base['pipeline bootstrap']:.2f} | {raw:.1f} | "
              f"x{raw / base['raw vLLM']:.2f} |")


if __name__ == "__main__":
    main()
