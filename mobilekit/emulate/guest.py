"""Runs inside the aarch64 root under qemu: only the standard library, numpy and ai_edge_litert.

Usage (from mobilekit.emulate): python3.11 guest.py JOB.json   (model, inputs, out, threads, repeats)
       python3.11 guest.py --versions
The job is a file, not arguments, so the guest's stack holds the same bytes for every job: counts then
do not move with the arguments' length.

For each thread count: load the model with LiteRT's default op resolver (XNNPACK
applied, as on a phone), set the inputs, then invoke 1 + REPEATS times, each inside
a window marked for the counting plugin (the first invoke, which packs XNNPACK's
weights, is its own window). Writes the outputs of the last invoke per thread count,
and prints one JSON line: versions and XNNPACK partitions per thread count.
"""

import ctypes
import json
import sys
from importlib.metadata import version

sys.path.insert(0, "/opt/mobilekit/site")  # the aarch64 wheels, unpacked by `mobilekit emulate setup`

import numpy as np  # noqa: E402
from ai_edge_litert import interpreter as litert  # noqa: E402

MARKER = 0x4D4B  # keep equal to MARKER in icount.c
_syscall = ctypes.CDLL(None).syscall


def versions():
    return {"python": sys.version.split()[0], "numpy": np.__version__, "ai_edge_litert": version("ai-edge-litert")}


def main(job_path):
    job = json.load(open(job_path))
    content = open(job["model"], "rb").read()
    inputs = np.load(job["inputs"])
    meta = {**versions(), "partitions": {}}
    outputs = {}
    for n in job["threads"]:
        it = litert.Interpreter(model_content=content, num_threads=n)
        it.allocate_tensors()
        for i, d in enumerate(it.get_input_details()):
            it.set_tensor(d["index"], inputs[f"input{i}"])
        for _ in range(1 + job["repeats"]):
            _syscall(MARKER, 1)
            it.invoke()
            _syscall(MARKER, 0)
        for i, d in enumerate(it.get_output_details()):
            outputs[f"t{n}_output{i}"] = it.get_tensor(d["index"])
        meta["partitions"][str(n)] = sum(op["op_name"] == "DELEGATE" for op in it._get_ops_details())
    np.savez(job["out"], **outputs)
    print(json.dumps(meta))


if __name__ == "__main__":
    if sys.argv[1:] == ["--versions"]:
        print(json.dumps(versions()))
    else:
        main(sys.argv[1])
