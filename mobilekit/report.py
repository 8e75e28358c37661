"""report.md and the console summary, both rendered from report.json's dict."""

from __future__ import annotations


def _kb(n: int) -> str:
    return f"{n / 1024:,.1f} KiB"


def summary_rows(report: dict) -> list[tuple[str, str]]:
    """(field, value) rows shared by report.md and the console summary table."""
    acc = report["accuracy"]
    sizes = report["sizes"]
    lat = report["latency"]
    q = report["quantization"]["input"]
    rows = [
        ("arch", report["arch"]),
        ("input", f"{report['input_shape']} int8 (scale {q['scale']:.6g}, zero point {q['zero_point']})"),
        ("classes", str(report["num_classes"])),
        ("params / MACs", f"{report['params']:,} / {report['macs']:,}"),
        ("float .tflite", _kb(sizes["float_tflite_bytes"])),
        ("int8 .tflite", _kb(sizes["int8_tflite_bytes"])),
        ("int8 .tflite gzip", _kb(sizes["int8_gzip_bytes"])
         + (f" ({sizes['bits_per_param']:.2f} bits per parameter)" if sizes.get("bits_per_param") else "")),
        ("weight sparsity", f"{report['sparsity']['int8_weights']:.1%} (target {report['sparsity']['target']:.0%})"),
    ]
    if "photos" in acc:
        rows += _photo_rows(acc["photos"], report["classes"])
    else:
        rows.append(("accuracy Keras float", f"{acc['keras_float']:.2%}"))
        for key, label in (("keras_pruned", "accuracy Keras pruned"), ("keras_qat", "accuracy Keras QAT")):
            if key in acc:
                rows.append((label, f"{acc[key]:.2%}"))
        rows.append(("accuracy int8 .tflite", f"{acc['tflite_int8']:.2%} on {acc['test_images']:,} test images"))
    rows += [
        ("latency (batch 1)", f"median {lat['median_ms']:.3f} ms, p90 {lat['p90_ms']:.3f} ms, "
                              f"{lat['num_threads']} thread, {lat['num_runs']} runs"),
        *_arm_rows(report.get("arm")),
        ("sha256", report["sha256"]),
        ("build time", f"{report['stage_seconds']['total']:.0f} s"),
    ]
    return rows


def _arm_rows(arm: dict | None) -> list[tuple[str, str]]:
    if not arm:
        return []
    return [(f"predicted on {p['device']}", f"{p['predicted_ms']:.2f} ms ({p['threads']} threads; "
             f"{p['instructions']:,} instructions on emulated {p['qemu_cpu']}, "
             f"{'bit-exact' if arm['emulated'][p['qemu_cpu']]['bit_exact'] else 'NOT bit-exact'} with the host)")
            for p in arm["devices"].values()]


def _photo_rows(photos: dict, classes: list[str]) -> list[tuple[str, str]]:
    rows = [("int8 top-1 = float top-1", f"{photos['top1_agreement']:.0%} of {photos['photos']} photos")]
    for name, e in photos["per_photo"].items():
        f, q = e["float_top5"][0], e["int8_top5"][0]
        mark = "" if "expected" not in e else (" (expected class)" if e["int8_ok"] else " (WRONG class)")
        rows.append((f"photo {name}", f"int8 {classes[q]} ({q}), float {classes[f]} ({f}){mark}"))
    return rows


def to_markdown(report: dict) -> str:
    lines = [f"# mobilekit build: {report['arch']}", "",
             f"`{report['files']['tflite']}`: full-integer int8 TFLite, batch 1, "
             f"int8 input and output; labels in `{report['files']['labels']}`.", "",
             "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in summary_rows(report)]
    pre = report["preprocessing"]
    q = report["quantization"]
    lines += ["", "## Preprocessing (what the app must do)", "",
              f"1. Resize the image to {pre['size'][0]}x{pre['size'][1]} ({pre['resize']}), "
              f"{pre['channels']} channels, {pre['layout']}.",
              f"2. `float_input = uint8_pixel * {pre['scale']:.10g} + {pre['offset']:.10g}`.",
              f"3. `int8_input = clamp(round(float_input / {q['input']['scale']:.10g} + "
              f"{q['input']['zero_point']}), -128, 127)`.",
              f"4. `probability = (int8_output - {q['output']['zero_point']}) * {q['output']['scale']:.10g}`; "
              "class names in labels.txt order.", "",
              "## Weight sparsity per layer (read from the .tflite)", "",
              "| layer | op | params | zeros | sparsity |", "|---|---|---:|---:|---:|"]
    for name, s in report["sparsity"]["per_layer"].items():
        lines.append(f"| {name} | {s['op']} | {s['params']:,} | {s['zeros']:,} | {s['sparsity']:.1%} |")
    lines += ["", "## Ops", "", ", ".join(f"{k} x{v}" for k, v in report["ops"].items()), "",
              "## Stage wall time (s)", "",
              ", ".join(f"{k} {v}" for k, v in report["stage_seconds"].items()), "",
              "## Versions", "", ", ".join(f"{k} {v}" for k, v in report["versions"].items()), ""]
    return "\n".join(lines)
