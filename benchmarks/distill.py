"""Distillation benchmark: does a teacher help the student at the same data and epochs?

For each (student, teacher) pair, one `mobilekit build --teacher` on Fashion-MNIST: the teacher
is trained first (same data, epochs and learning rate), then the student twice from the same
initial weights and data order, once alone and once on the Hinton mix of hard labels and the
teacher's softened outputs; the distilled one continues through the recipe to the int8 file.
Records teacher, student-alone and student-distilled accuracies (Keras float) and the int8
file's, for each distill_alpha / temperature setting.

Usage: python benchmarks/distill.py [--pairs squeezenet1_1:squeezenet1_0] [--limit-train 12000]
                                    [--epochs 1.5] [--settings 0.5:4,0.1:4] [--out benchmarks/results/distill.json]
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path


def main(argv=None) -> int:
    from mobilekit.files import write_json_atomic
    from mobilekit.pipeline import BuildConfig, build

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", default="squeezenet1_1:squeezenet1_0", help="student:teacher[,student:teacher]")
    p.add_argument("--settings", default="0.5:4,0.1:4", help="distill_alpha:temperature[,...]")
    p.add_argument("--limit-train", type=int, default=12000)
    p.add_argument("--input-size", type=int, default=32)
    p.add_argument("--epochs", type=float, default=1.5)
    p.add_argument("--recipe", default="int8-qat")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "distill.json"))
    args = p.parse_args(argv)
    rows = []
    for pair in args.pairs.split(","):
        student, teacher = pair.split(":")
        for setting in args.settings.split(","):
            alpha, temperature = (float(v) for v in setting.split(":"))
            with tempfile.TemporaryDirectory() as out:
                cfg = BuildConfig(arch=student, teacher=teacher, distill_alpha=alpha, temperature=temperature,
                                  input_size=args.input_size, limit_train=args.limit_train, epochs=args.epochs,
                                  recipe=args.recipe, latency_runs=10, out=out)
                report = build(cfg)
            acc = report["accuracy"]
            row = {"student": student, "teacher": teacher, "distill_alpha": alpha, "temperature": temperature,
                   "teacher_acc": acc["teacher"], "student_alone_acc": acc["keras_float_without_teacher"],
                   "student_distilled_acc": acc["keras_float"], "int8_acc": acc["tflite_int8"],
                   "gain": acc["keras_float"] - acc["keras_float_without_teacher"],
                   "test_images": acc["test_images"], "seconds": report["stage_seconds"]}
            print(f"{student} <- {teacher} (alpha {alpha:g}, T {temperature:g}): teacher {row['teacher_acc']:.2%}, "
                  f"student alone {row['student_alone_acc']:.2%}, distilled {row['student_distilled_acc']:.2%} "
                  f"({row['gain']:+.2%}), int8 {row['int8_acc']:.2%}", flush=True)
            rows.append(row)
    result = {"benchmark": "distill", "dataset": "fashion-mnist", "host": {"machine": platform.machine()},
              "versions": {"mobilekit": version("mobilekit"), "tensorflow": version("tensorflow")},
              "settings": {"limit_train": args.limit_train, "input_size": args.input_size, "epochs": args.epochs,
                           "recipe": args.recipe, "seed": 0},
              "rows": rows}
    write_json_atomic(Path(args.out), result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
