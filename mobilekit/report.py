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
        *_recipe_rows(report),
    ]
    if "photos" in acc:
        rows += _photo_rows(acc["photos"], report["classes"])
    else:
        if "teacher" in acc:
            rows.append(("accuracy teacher", f"{acc['teacher']:.2%} ({report['config']['teacher']})"))
            rows.append(("accuracy Keras float without teacher", f"{acc['keras_float_without_teacher']:.2%}"))
        rows.append(("accuracy Keras float" + (" distilled" if "teacher" in acc else ""), f"{acc['keras_float']:.2%}"))
        for key, label in (("keras_pruned", "accuracy Keras pruned"), ("keras_clustered", "accuracy Keras clustered"),
                           ("keras_qat", "accuracy Keras QAT")):
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


def _recipe_rows(report: dict) -> list[tuple[str, str]]:
    if "recipe" not in report:
        return []
    from mobilekit.recipes import PRESETS

    r, s = report["recipe"], report["survival"]
    preset = PRESETS[r["name"]].to_json() if r["name"] in PRESETS else {}
    changed = [f"{k} {v} instead of {preset[k]}" for k, v in r.items() if k in preset and preset[k] != v]
    rows = [("recipe", f"{r['name']}: {r['summary']}" + (f" ({'; '.join(changed)})" if changed else ""))]
    lost = [f"sparsity lost in {', '.join(s['lost_sparsity'])}" if s["lost_sparsity"] else "",
            f"clusters split per tensor in {len(s['clusters_lost_per_tensor'])} layers"
            if s["clusters_lost_per_tensor"] else "",
            f"clusters lost per channel in {', '.join(s['clusters_lost_per_channel'])}"
            if s["clusters_lost_per_channel"] else ""]
    if r["sparsity"] or r["m_by_n"] or r["clusters"]:
        rows.append(("survived into the .tflite", "; ".join(x for x in lost if x) or "all zeros and clusters"))
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
              "## Weights per layer (read from the .tflite)", "",
              "Zeros in the file (and in the Keras model before conversion), distinct int8 values per tensor "
              "and at most per output channel (and cluster values in Keras), groups of 4 input-channel "
              "weights with >= 2 zeros.", "",
              "| layer | op | params | zeros (Keras) | sparsity | distinct / per channel (Keras) | 2:4 groups |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for name, s in report["sparsity"]["per_layer"].items():
        keras_zeros = f" ({s['keras_zeros']:,})" if "keras_zeros" in s else ""
        keras_values = f" ({s['keras_values']})" if "keras_values" in s else ""
        two = "-" if s.get("two_of_four") is None else f"{s['two_of_four']:.0%}"
        lines.append(f"| {name} | {s['op']} | {s['params']:,} | {s['zeros']:,}{keras_zeros} | {s['sparsity']:.1%} | "
                     f"{s['distinct_values']} / {s['max_distinct_per_channel']}{keras_values} | {two} |")
    lines += ["", "## Ops", "", ", ".join(f"{k} x{v}" for k, v in report["ops"].items()), "",
              "## Stage wall time (s)", "",
              ", ".join(f"{k} {v}" for k, v in report["stage_seconds"].items()), "",
              "## Versions", "", ", ".join(f"{k} {v}" for k, v in report["versions"].items()), ""]
    return "\n".join(lines)
