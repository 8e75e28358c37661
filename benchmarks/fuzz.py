"""Fuzz `mobilekit bench` with seeded mutations of a real .tflite and of real benchmark_model logs.

Every input must be benchmarked (exit 0) or refused with one line on stderr (exit 2): no crash of the
mobilekit process, no traceback, no other exit code. Writes benchmarks/results/fuzz.json.

    python benchmarks/fuzz.py                      # 1,000 .tflite + 1,000 logs (about 30 min on 2 cores)
    python benchmarks/fuzz.py --tflite 50 --logs 200 --out /tmp/fuzz.json
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_LOGS = ROOT / "tests" / "data" / "benchmark_model"
JUNK = ["abc", "1e+e", "1.2.3", "4.5.6", "-3", "99999999999999999999999", "nan", "inf", "-inf", "1e400", "", "-0",
        "0x10", "1_000", "\x00", "\u0661\u0662", "[1]", "=", "1e-400", "-1e9", "18446744073709551617"]


def mutate_tflite(content: bytes, rng, i: int) -> bytes:
    """Copy ``i``: 1-8 random bytes changed, half anywhere (mostly weights), half in the first/last 4 KiB
    (the flatbuffer's tables); every tenth copy also truncated."""
    b = bytearray(content)
    if i % 10 == 9:
        b = b[: int(rng.integers(8, len(b)))]
    for _ in range(int(rng.integers(1, 9))):
        if i % 2:
            pos = int(rng.integers(0, len(b)))
        else:
            edge = int(rng.integers(0, min(4096, len(b))))
            pos = edge if rng.random() < 0.5 else len(b) - 1 - edge
        b[pos] = int(rng.integers(0, 256))
    return bytes(b)


def mutate_log(text: str, rng) -> str:
    """A crafted log: numbers replaced by junk or absurd values, lines dropped or repeated, binary noise,
    truncation (1-4 edits)."""
    import re

    lines = text.splitlines()
    for _ in range(int(rng.integers(1, 5))):
        k = int(rng.integers(0, len(lines))) if lines else 0
        kind = int(rng.integers(0, 6))
        if kind <= 2 and lines:
            numbers = list(re.finditer(r"-?[\d.]+(?:e[-+]?\d+)?", lines[k]))
            if numbers:
                m = numbers[int(rng.integers(0, len(numbers)))]
                lines[k] = lines[k][:m.start()] + JUNK[int(rng.integers(0, len(JUNK)))] + lines[k][m.end():]
        elif kind == 3 and lines:
            del lines[k]
        elif kind == 4 and lines:
            lines.insert(k, lines[k])
        else:
            noise = bytes(rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8)).decode("latin-1")
            lines.insert(k, noise)
    out = "\n".join(lines)
    if rng.random() < 0.1:
        out = out[: int(rng.integers(0, len(out) + 1))]
    return out


def run_cli(argv: list[str]) -> tuple[int, str]:
    """``mobilekit`` in-process: (exit code, stderr); any exception escaping main() is a finding."""
    from mobilekit import cli

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = cli.main(argv)
        except SystemExit as e:
            code = e.code
        except Exception as e:  # noqa: BLE001 - what the fuzzer looks for
            return -1, f"{type(e).__name__}: {e}"
    return code, err.getvalue()


def finding(code: int, stderr: str) -> str | None:
    """What is wrong with one run's outcome, or None."""
    if code == 0:
        return None
    lines = stderr.strip().splitlines()
    if code != 2 or "Traceback" in stderr or len(lines) != 1 or not lines[0].startswith("mobilekit bench: error: "):
        return f"exit {code}: {stderr.strip()[-300:]}"
    return None


def fuzz(kind: str, count: int, work: Path, seed: int = 0) -> dict:
    """Run ``count`` mutated inputs of ``kind`` ("tflite" or "logs") through `mobilekit bench`."""
    rng = np.random.default_rng(seed)
    codes, findings = {0: 0, 2: 0}, []
    if kind == "tflite":
        from mobilekit.convert import convert_int8
        import mobilekit

        model = mobilekit.create("squeezenet1_1", input_shape=(32, 32, 3), classes=10)
        content = convert_int8(model, rng.random((16, 32, 32, 3), np.float32))
    samples = sorted(p.read_text() for p in SAMPLE_LOGS.glob("*.log"))
    for i in range(count):
        path = work / (f"m{i}.tflite" if kind == "tflite" else f"m{i}.log")
        if kind == "tflite":
            path.write_bytes(mutate_tflite(content, rng, i))
            argv = ["bench", str(path), "--num_runs", "1", "--warmup_runs", "0", "--min_secs", "0"]
        else:
            path.write_bytes(mutate_log(samples[i % len(samples)], rng).encode("utf-8", "surrogateescape"))
            argv = ["bench", "--from-benchmark-model", str(path)]
        code, stderr = run_cli(argv)
        codes[code] = codes.get(code, 0) + 1
        if (problem := finding(code, stderr)) is not None:
            findings.append({"input": i, "problem": problem})
        path.unlink()
    return {"inputs": count, "exit_codes": {str(k): v for k, v in codes.items()}, "findings": findings}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tflite", type=int, default=1000)
    p.add_argument("--logs", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "fuzz.json"))
    args = p.parse_args(argv)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mobilekit-fuzz-") as d:
        result = {"tflite": fuzz("tflite", args.tflite, Path(d), args.seed),
                  "logs": fuzz("logs", args.logs, Path(d), args.seed)}
    result.update(seed=args.seed, seconds=round(time.monotonic() - t0, 1), machine=platform.machine(),
                  python=platform.python_version())
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    for kind in ("tflite", "logs"):
        r = result[kind]
        print(f"{kind}: {r['inputs']} inputs, exit codes {r['exit_codes']}, {len(r['findings'])} findings")
    return 1 if result["tflite"]["findings"] or result["logs"]["findings"] else 0


if __name__ == "__main__":
    sys.exit(main())
