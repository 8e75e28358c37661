"""Rendering, in one place: report.md and the build's console summary (from report.json's dict), the
`mobilekit bench` tables and CSV (from its JSON document). Nothing here computes a number."""

from __future__ import annotations

import csv
import io
from pathlib import Path

# Per-run statistics, in the table's and the CSV's column order.
STAT_FIELDS = ("init_ms", "first_inference_ms", "warmup_mean_ms", "min_ms", "median_ms", "mean_ms", "p90_ms",
               "p99_ms", "std_ms", "runs", "runs_per_s", "rss_increase_kb", "xnnpack_partitions")


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
        ("input", f"{report['input_shape']} {q['dtype']}" + (f" (scale {q['scale']:.6g}, zero point {q['zero_point']})"
                                                            if q.get("scale") is not None else "")),
        *_precision_rows(report.get("precision")),
        ("classes", str(report["num_classes"])),
        ("params / MACs", f"{report['params']:,} / {report['macs']:,}"),
        ("float .tflite", _kb(sizes["float_tflite_bytes"])),
        ("int8 .tflite", _kb(sizes["int8_tflite_bytes"])),
        ("int8 .tflite gzip", _kb(sizes["int8_gzip_bytes"])
         + (f" ({sizes['bits_per_param']:.2f} bits per parameter)" if sizes.get("bits_per_param") else "")),
        ("weight sparsity", f"{report['sparsity']['int8_weights']:.1%} (target {report['sparsity']['target']:.0%})"),
        *_recipe_rows(report),
        *_budget_rows(report.get("budget")),
        *_rewrite_rows(report.get("rewrites")),
    ]
    detection = acc.get("detection")
    if "photos" in acc:
        rows += _photo_rows(acc["photos"], report["classes"])
    elif detection:
        rows += _detection_rows(acc, detection)
    else:
        if "teacher" in acc:
            rows.append(("accuracy teacher", f"{acc['teacher']:.2%} ({report['config']['teacher']})"))
            rows.append(("accuracy Keras float without teacher", f"{acc['keras_float_without_teacher']:.2%}"))
        rows += _transfer_rows(report)
        rows.append(("accuracy Keras float" + (" distilled" if "teacher" in acc else ""), f"{acc['keras_float']:.2%}"))
        for key, label in (("keras_pruned", "accuracy Keras pruned"), ("keras_clustered", "accuracy Keras clustered"),
                           ("keras_qat", "accuracy Keras QAT")):
            if key in acc:
                rows.append((label, f"{acc[key]:.2%}"))
        ci = acc.get("tflite_int8_ci95")
        rows.append(("accuracy int8 .tflite", f"{acc['tflite_int8']:.2%} on {acc['test_images']:,} test images"
                     + (f" (95% interval {ci[0]:.1%} to {ci[1]:.1%})" if ci else "")))
    if report.get("numerics"):
        n = report["numerics"]
        agreement = "" if detection else f"top-1 agreement {n['output']['top1_agreement']:.1%} on {n['images']} images; "
        rows.append(("int8 vs float reference", agreement + "lowest SQNR: " + ", ".join(
                         f"{w['name']} {w['sqnr_db']:.1f} dB" for w in n["worst_layers"][:3])))
    rows += [
        ("latency (batch 1)", f"median {lat['median_ms']:.3f} ms, p90 {lat['p90_ms']:.3f} ms, "
                              f"{lat['num_threads']} thread, {lat['num_runs']} runs"
                              + (f" on {report['host']['model']} ({report['host']['summary']})"
                                 if report.get("host") else "")),
        *_arm_rows(report.get("arm")),
        *(_detector_app_rows(report) if detection else _app_rows(report.get("app"))),
        ("sha256", report["sha256"]),
        *_distributed_rows(report.get("distributed")),
        ("build time", f"{report['stage_seconds']['total']:.0f} s"),
    ]
    return rows


def _distributed_rows(d: dict | None) -> list[tuple[str, str]]:
    """--workers: where training ran, how the batch was split, the step's compute and gradient exchange."""
    if not d:
        return []
    s = d["seconds_per_step"]
    nodes = len(set(d["nodes"]))
    rows = [("data-parallel training", f"{d['workers']} Ray Train worker(s) on {nodes} node(s), global batch "
                                       f"{d['global_batch']} ({d['per_worker_batch']} per worker), "
                                       f"{d['restarts']} restart(s), replicas identical: "
                                       f"{'yes' if d['replicas_identical'] else 'NO'}")]
    if s.get("step") is not None:
        rows.append(("seconds per step", f"{s['step']:.3f} s: compute {s['compute']:.3f} s, gradient exchange "
                                         f"{s['gradient_exchange']:.3f} s"))
    return rows


def _transfer_rows(report: dict) -> list[tuple[str, str]]:
    """The pretrained weights and each transfer phase: what trained, and the accuracy after it."""
    t = report.get("transfer")
    if not t or not t.get("phases"):
        return []
    w = t["weights"]
    rows = [("pretrained weights", f"{w['weights']}: {w['source']}, {w['file']} (sha256 {w['sha256'][:16]}...)")]
    for p in t["phases"]:
        what = ("the new head on the frozen backbone" if p["phase"] == "head"
                else f"fine-tuning ({p.get('fine_tune')}: {len(p['trainable_layers'])} layers)")
        done = (f"{p['epochs']:g} epochs, {p['steps']} steps at lr {p['lr']:g}, {p['trainable_params']:,} trainable / "
                f"{p['frozen_params']:,} frozen params (BatchNorm frozen)" if p["steps"] else "skipped")
        acc = f": {p['accuracy']:.2%}" if "accuracy" in p else ""
        rows.append((f"phase {p['phase']}", f"{what}, {done}{acc}"))
    return rows


def _detection_rows(acc: dict, d: dict) -> list[tuple[str, str]]:
    """A detector's mAP@0.5 after each stage, the int8 file's mAP@0.5 and mAP@[.5:.95], its anchors and NMS."""
    rows = [("mAP@0.5 Keras float", f"{acc['keras_float']:.3f}")]
    rows += [(f"mAP@0.5 Keras {label}", f"{acc[key]:.3f}") for key, label in
             (("keras_pruned", "pruned"), ("keras_clustered", "clustered"), ("keras_qat", "QAT")) if key in acc]
    rows.append(("mAP@0.5 int8 .tflite", f"{acc['tflite_int8']:.3f} (mAP@[.5:.95] {d['map']:.3f}) on "
                 f"{d['test_images']:,} test images, {d['test_boxes']:,} boxes; run as an app runs it"))
    rows.append(("anchors", f"{d['grid'][0]}x{d['grid'][1]} cells x {d['anchors_per_cell']} shapes (k-means over the "
                 "training boxes; anchors.txt)"))
    settings = (f"score > {d['score_threshold']:g}, NMS IoU {d['nms_iou']:g}, at most {d['max_detections']} "
                "detections")
    if _app_decodes(d):
        rows.append(("post-processing", f"the app's (--raw-outputs): {d['decode']['formula']}; {settings}"))
    else:
        rows.append(("post-processing", f"TFLite_Detection_PostProcess in the file: {settings}"))
    return rows


def _app_decodes(detection: dict) -> bool:
    """Whether a detector's file leaves decoding and NMS to the app (``--raw-outputs``)."""
    return detection.get("post_processing", "").startswith("the app's")


def _detector_app_rows(report: dict) -> list[tuple[str, str]]:
    io = report["quantization"]["input"]
    plain = (report.get("app") or {}).get("io", {}).get("plain_pixel")
    raw = _app_decodes(report["accuracy"]["detection"])
    out = ("out: deltas [1, N, 4] and class scores [1, N, C], int8 (dequantize each with its scale and zero point)"
           if raw else "out: boxes [1, N, 4] (ymin, xmin, ymax, xmax, normalised), classes [1, N], scores [1, N], "
           "count [1], float32")
    rows = [row for row in _app_rows(report.get("app")) if row[0] != "input / output"]
    return [*rows[:1], ("input / output", f"{io['dtype']} pixels in" + (" (the pixel itself)" if plain else "")
                        + f"; {out}"), *rows[1:]]


def _class_lines(acc: dict, files: dict) -> list[str]:
    """report.md's per-class accuracy and confusion matrix (rows: true class); a detector's per-class AP."""
    if acc.get("detection"):
        return _detection_lines(acc, files)
    detail = acc.get("int8_detail")
    if not detail:
        return []
    names = list(detail["per_class"])
    lines = ["", "## Per-class accuracy of the int8 file", "",
             f"{acc['test_images']:,} test images; overall {acc['tflite_int8']:.2%}, 95% interval "
             f"{acc['tflite_int8_ci95'][0]:.1%} to {acc['tflite_int8_ci95'][1]:.1%} ({acc['ci_method']}).", "",
             "| class | test images | accuracy |", "|---|---:|---:|"]
    for name, c in detail["per_class"].items():
        lines.append(f"| {name} | {c['test_images']:,} | {'-' if c['accuracy'] is None else format(c['accuracy'], '.1%')} |")
    if len(names) <= 30:
        lines += ["", "Confusion matrix (rows: true class, columns: predicted)"
                  + (f"; the picture: `{files['confusion_png']}`" if files.get("confusion_png") else "") + ":", "",
                  "| | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
        lines += [f"| {name} | " + " | ".join(str(v) for v in row) + " |"
                  for name, row in zip(names, detail["confusion"])]
    return lines


def _detection_lines(acc: dict, files: dict) -> list[str]:
    d = acc["detection"]
    lines = ["", "## Per-class AP of the int8 file", "",
             f"COCO metrics (pycocotools) on {d['test_images']:,} test images; mAP@0.5 {d['map50']:.3f}, "
             f"mAP@[.5:.95] {d['map']:.3f}" + (f"; precision-recall at IoU 0.5: `{files['pr_png']}`"
                                             if files.get("pr_png") else "") + ".", "",
             "| class | test boxes | AP@0.5 | AP@[.5:.95] |", "|---|---:|---:|---:|"]
    for name, c in d["per_class"].items():
        ap50, ap = ("-", "-") if c["ap"] is None else (f"{c['ap50']:.3f}", f"{c['ap']:.3f}")
        lines.append(f"| {name} | {c['boxes']:,} | {ap50} | {ap} |")
    return lines


def _recipe_rows(report: dict) -> list[tuple[str, str]]:
    if "recipe" not in report:
        return []
    from mobilekit.recipes import PRESETS

    r, s = report["recipe"], report["survival"]
    preset = PRESETS[r["name"]].to_json() if r["name"] in PRESETS else {}
    changed = [f"{k} {v} instead of {preset[k]}" for k, v in r.items() if k in preset and preset[k] != v]
    label = r.get("label") or (r["name"] + (f" ({'; '.join(changed)})" if changed else ""))
    rows = [("recipe", f"{label}: {r['summary']}")]
    lost = [f"sparsity lost in {', '.join(s['lost_sparsity'])}" if s["lost_sparsity"] else "",
            f"clusters split per tensor in {len(s['clusters_lost_per_tensor'])} layers"
            if s["clusters_lost_per_tensor"] else "",
            f"clusters lost per channel in {', '.join(s['clusters_lost_per_channel'])}"
            if s["clusters_lost_per_channel"] else ""]
    if r["sparsity"] or r["m_by_n"] or r["clusters"]:
        rows.append(("survived into the .tflite", "; ".join(x for x in lost if x) or "all zeros and clusters"))
    return rows


def _budget_rows(b: dict | None) -> list[tuple[str, str]]:
    """The accuracy budget: held or not, what was chosen, on how many validation images, among what."""
    if not b:
        return []
    c = b["chosen"]
    tried = "; ".join(f"{t['sparsity']:.0%} {t['scheme']} {t['drop_points']:+.2f} (±{t['drop_se_points']:.2f})"
                      for t in b["candidates"])
    return [("accuracy budget", f"{b['max_accuracy_drop']:g} point(s) on {b['validation_images']:,} validation images: "
             + ("met" if b["met"] else "NOT MET") + f"; shipped sparsity {c['sparsity']:.0%} with {c['scheme']} "
             f"(int8 {c['int8_validation']:.2%} vs float {b['float_validation']:.2%}); tried: {tried}")]


def _rewrite_rows(log: list | None) -> list[tuple[str, str]]:
    """What the export rewrites did to the .tflite graph (the Keras model keeps the paper's)."""
    if log is None:
        return []
    ranges = [e for e in log if e["rewrite"] == "bias-range"]
    log = [e for e in log if e["rewrite"] != "bias-range"]
    done = [f"{e['rewrite']} ({e['layer']}{' -> ' + e['into'] if e.get('into') else ''})" for e in log if e["applied"]]
    refused = [f"{e['rewrite']} not at {e['layer']}: {e['reason']}" for e in log if not e["applied"]]
    if ranges:  # one line for all: a pruned model has many
        channels = sum(len(e["channels"]) for e in ranges)
        done.append(f"bias-range ({channels} channel(s) in {len(ranges)} layer(s) whose int32 bias saturated, "
                    f"{sum(e['zero_channels'] for e in ranges)} of them pruned out)")
    return [("graph rewrites (export only)", "; ".join(done + refused) or "none applied")]


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


def model_kind(report: dict) -> str:
    """"full-integer int8 TFLite, int8 input and output", or what a mixed-precision file computes in."""
    q = report["quantization"]
    io = f"{q['input']['dtype']} input and {q['output']['dtype']} output"
    p = report.get("precision")
    detection = report["accuracy"].get("detection")
    if detection and _app_decodes(detection):
        return f"full-integer int8 TFLite, raw detector outputs (the app decodes and runs NMS), {io}"
    if detection:
        return f"int8 TFLite up to its float post-processing (TFLite_Detection_PostProcess), {io}"
    if not p or p["full_int8"]:
        return f"full-integer int8 TFLite, {io}"
    ops = p["ops"]
    return (f"mixed-precision TFLite, not full int8 ({ops['int8']} int8 ops, {ops['int16']} int16x8, {ops['float']} "
            f"float, {ops['conversions']} QUANTIZE / DEQUANTIZE), {io}")


def _precision_rows(p: dict | None) -> list[tuple[str, str]]:
    """The precision row of a build that is not the converter's full-int8 file."""
    if not p or (p["mode"] == "int8" and not p.get("explicit")):
        return []
    moved = [f"{k} ({v})" for k, v in p["layers"].items() if v != "int8"]
    text = f"{p['mode']}" + (f", {len(moved)} layer(s) not int8: {', '.join(moved[:6])}"
                             + (" ..." if len(moved) > 6 else "") if moved else ", every layer int8")
    if "chosen" in p:
        text += (f"; top-1 agreement with float {p['chosen']['top1_agreement']:.1%} (int8 "
                 f"{p['int8']['top1_agreement']:.1%}) on {p['search_images']} held-out images")
    if "xnnpack" in p:
        text += f"; XNNPACK partitions {p['xnnpack']['partitions']}, ops outside {p['xnnpack']['ops_outside']}"
    return [("precision", text)]


def to_markdown(report: dict) -> str:
    lines = [f"# mobilekit build: {report['arch']}", "",
             f"`{report['files']['tflite']}`: {model_kind(report)}, batch 1; labels in "
             f"`{report['files']['labels']}`.", "",
             *[f"**Warning: {w}**\n" for w in report.get("warnings") or []],
             "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in summary_rows(report)]
    lines += _class_lines(report["accuracy"], report.get("files") or {})
    q = report["quantization"]
    steps = preprocessing_steps(report["preprocessing"], q)
    detection = report["accuracy"].get("detection")
    if detection and _app_decodes(detection):
        steps[-1] = ("5. Dequantize the two outputs (deltas [1, N, 4], then class scores [1, N, C]) with their scales "
                     f"and zero points, then decode and suppress: {detection['decode']['formula']}.")
    elif detection:  # four outputs, read by the op, not one of class scores
        steps[-1] = ("5. Read the TFLite_Detection_PostProcess op's four outputs, in the op's order (the file lists its "
                     "outputs in another): boxes [1, N, 4] (ymin, xmin, ymax, xmax, normalised to the input: "
                     "multiply by the photo's height and width), classes [1, N] (index into labels.txt), scores "
                     "[1, N], count [1] (the first count rows are the detections).")
    lines += ["", "## Preprocessing (what the app must do)", "", *steps,
              "",
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


def preprocessing_steps(pre: dict, q: dict) -> list[str]:
    """report.md's numbered preprocessing steps: every convention an app must copy, with this build's numbers
    (reports written before the conventions were recorded get the steps they have)."""
    qi, qo = q["input"], q["output"]
    h, w = pre["size"]
    grey = pre.get("grey", "")
    if pre.get("grey_source"):
        grey += "; this model was trained on grey images (Fashion-MNIST), so give it grey input too"
    resize = ", ".join(x for x in (pre.get("aspect_ratio"), pre.get("pixel_centers"),
                                   f"antialias {'on' if pre.get('antialias') else 'off'}" if "antialias" in pre
                                   else None, pre.get("rounding")) if x)
    orientation = f" {pre['orientation'][0].upper()}{pre['orientation'][1:]}." if pre.get("orientation") else ""
    steps = [f"1. Decode to {pre.get('channel_order', 'RGB')}" + (f"; {grey}." if grey else ".") + orientation,
             f"2. Resize to {h}x{w} ({pre['resize']}" + (f"; {resize}" if resize else "") + f"), {pre['layout']}.",
             f"3. `float_input = uint8_pixel * {pre['scale']:.10g} + {pre['offset']:.10g}` (float32).",
             _input_step(qi), _output_step(qo)]
    return steps


def _input_step(qi: dict) -> str:
    if qi["dtype"] == "float32":
        return "4. `float_input` goes in as it is (float32 input: the model quantizes it inside)."
    from mobilekit.data import INPUT_RANGES

    low, high = INPUT_RANGES[qi["dtype"]]
    step = (f"4. `{qi['dtype']}_input = clamp(round_half_to_even(float_input / {qi['scale']:.10g} + "
            f"({qi['zero_point']})), {low}, {high})` in float32.")
    plain = {"int8": ("pixel_minus_128_exact", "`pixel - 128`"), "uint8": ("pixel_exact", "the pixel")}.get(qi["dtype"])
    exact = qi.get(plain[0]) if plain else None
    if exact:
        return step + (f" For this build that is exactly {plain[1]} for every pixel value 0..255 (checked): no "
                       "arithmetic on the phone.")
    if exact is False:
        return step + (f" It is not exactly {plain[1]} for this build (the input scale is not 1/255 to the bit): "
                       "compute the formula.")
    return step


def _output_step(qo: dict) -> str:
    if qo["dtype"] == "float32":
        return "5. `probability = float32_output`; class names in labels.txt order."
    return (f"5. `probability = ({qo['dtype']}_output - ({qo['zero_point']})) * {qo['scale']:.10g}`; "
            "class names in labels.txt order.")


BENCH_CSV_HEADER = ("model", "runtime", "num_threads", "size_bytes", "gzip_bytes", *STAT_FIELDS)


def bench_csv(result: dict) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(BENCH_CSV_HEADER)
    for m in result["models"]:
        for threads, stats in m["runs"].items():
            writer.writerow([m["path"], m["runtime"], threads, m["size_bytes"], m["gzip_bytes"],
                             *(stats[k] for k in STAT_FIELDS)])
    return buf.getvalue()


def _wide_console():
    """stdout's console; 160 columns when it is a log or a pipe, so names stay whole."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=160)


def _bench_precision(p: dict | None) -> str:
    """"full int8", or the op counts of a file that is not (bench's precision row)."""
    if not p:
        return "-"
    if p["full_int8"]:
        return "full int8"
    ops = p["ops"]
    kinds = ", ".join(f"{ops[k]} {k}" for k in ("int8", "int16", "float") if ops[k])
    return f"{kinds} ops, {ops['conversions']} (de)quantize; {p['io'][0]} I/O"


def _app_rows(app: dict | None) -> list[tuple[str, str]]:
    from mobilekit.app_metadata import summary

    return summary(app) if app else []


def print_bench_tables(result: dict) -> None:
    from rich.table import Table

    console = _wide_console()
    s = result["settings"]
    cpu = result["host"].get("cpu")
    host = [m for m in result["models"] if m["runtime"] != "benchmark_model"]
    logs = [m for m in result["models"] if m["runtime"] == "benchmark_model"]
    # One table per host thread count; phone logs (their own thread count and settings) join the first
    # table as columns named with their thread count, so host and phone numbers sit side by side.
    thread_counts = list(s["num_threads"]) if host else []
    tables = [(t, [(m, str(t)) for m in host], []) for t in thread_counts]
    log_columns = [(m, next(iter(m["runs"]))) for m in logs]
    if tables:
        tables[0] = (tables[0][0], tables[0][1], log_columns)
    else:
        tables = [(None, [], log_columns)]
    for threads, host_columns, phone_columns in tables:
        title = (f"batch 1, {threads} thread(s) on the host ({cpu['model']}, {cpu['summary']})" if threads and cpu
                 else f"batch 1, {threads} thread(s) on the host" if threads else "batch 1")
        if host_columns:
            title += f", XNNPACK {'on' if s['use_xnnpack'] else 'off'}, {s['num_runs']}+ runs interleaved"
        if phone_columns:
            title += "; benchmark_model logs: the phone's own threads and settings"
        table = Table(title=title, title_justify="left")
        table.add_column("")
        for m, t in host_columns:
            table.add_column(Path(m["path"]).name, justify="right", overflow="fold")
        for m, t in phone_columns:
            table.add_column(f"{Path(m['path']).name}\n(benchmark_model, {t} thr)", justify="right",
                             overflow="fold")
        rows = [("size / gzip KiB", lambda m, r: " / ".join("-" if m[k] is None else f"{m[k] / 1024:,.1f}"
                                                            for k in ("size_bytes", "gzip_bytes")))]
        rows += [(k.replace("_ms", " ms").replace("_", " "), (lambda key: lambda m, r: _fmt(r[key]))(k))
                 for k in STAT_FIELDS if k != "xnnpack_partitions"]
        rows += [("runtime", lambda m, r: m["runtime"]),
                 ("precision", lambda m, r: _bench_precision(m.get("precision"))),
                 ("XNNPACK partitions / outside", lambda m, r: "-" if r["xnnpack_partitions"] is None else
                  f"{r['xnnpack_partitions']} / {', '.join(r['ops_outside_xnnpack']) or '-'}"),
                 ("MACs", lambda m, r: f"{m['analysis']['macs']:,}" if m["analysis"] else "-"),
                 ("weights / peak activations KiB", lambda m, r: "-" if not m["analysis"] else
                  f"{m['analysis']['weight_bytes'] / 1024:,.1f} / "
                  f"{m['analysis']['peak_activation_bytes'] / 1024:,.1f}"),
                 ("input", lambda m, r: ", ".join(f"{t['dtype']}{t['shape']}" for t in m["inputs"])),
                 ("output", lambda m, r: ", ".join(f"{t['dtype']}{t['shape']}" for t in m["outputs"]))]
        columns = host_columns + phone_columns
        for label, cell in rows:
            table.add_row(label, *(cell(m, m["runs"][t]) for m, t in columns))
        console.print(table)
    for m in result["models"]:
        if m["runtime"] == "benchmark_model":
            console.print(f"{m['path']}: from benchmark_model log {m['source_log']}")
            continue
        console.print(f"{m['path']}: " + ", ".join(f"{k} x{v}" for k, v in m["ops"].items()))
        for line in _target_lines(m["targets"]):
            console.print("  " + line)
        if m.get("app"):
            from mobilekit.app_metadata import summary

            for label, text in summary(m["app"]):
                console.print(f"  {label}: {text}")
        if "arm" in m:
            from mobilekit.bench.devices import arm_lines

            for line in arm_lines(m["arm"]):
                console.print("  " + line)
        if "profile" in m:
            p = m["profile"]
            table = Table("op type", "count", "ms", "share", title=f"{Path(m['path']).name}: time by op type (op-prefix "
                          f"sub-models; total {p['total_ms']:.3f} ms, noise {p['noise_ms'] or 0:.3f} ms)",
                          title_justify="left")
            for op, agg in p["by_op_type"].items():
                table.add_row(op, str(agg["count"]), f"{agg['ms']:.3f}", f"{agg['share']:.1%}")
            console.print(table)


def _target_lines(t: dict) -> list[str]:
    def mark(ok):
        return "meets" if ok else "MISSES"

    lines = []
    if "sram" in t:
        s = t["sram"]
        lines.append(f"SRAM {s['budget_kb']:,g} KiB: weights {s['weights_bytes'] / 1024:,.1f} KiB + peak activations "
                     f"{s['peak_activation_bytes'] / 1024:,.1f} KiB -> {mark(s['ok'])}")
    if "fps" in t:
        s = t["fps"]
        lines.append(f"{s['target']:g} FPS: median {s['median_ms']:.3f} ms = {s['achieved']:,.1f} FPS on this host "
                     f"-> {mark(s['ok'])}")
    if "energy" in t:
        s = t["energy"]
        low, high = s["total_mj"]
        estimate = f"{low:.4g}" if low == high else f"{low:.4g}-{high:.4g}"
        lines.append(f"energy {s['budget_mj']:g} mJ/frame: estimated {estimate} mJ "
                     f"(compute {s['compute_mj']:.3g} mJ, memory in {s['memory']}) -> {mark(s['ok'])}")
    return lines


def _fmt(v) -> str:
    if v is None:
        return "-"
    return f"{v:,.3f}" if isinstance(v, float) else f"{v:,}"


def numerics_table(doc: dict) -> None:
    """`mobilekit numerics`'s table: one row per compared layer, in graph order."""
    from rich.table import Table

    out = doc["output"]
    table = Table("#", "layer", "op", "SQNR dB", "rounding-only dB", "x rounding", "cosine", "max |err|",
                  "mean |err|", "scale", title=f"int8 vs float, layer by layer ({doc['data']}): final top-1 "
                  f"agreement {out['top1_agreement']:.1%}, KL {out['kl']:.4f}", title_justify="left")
    for i, r in enumerate(doc["layers"]):
        ratio = "-" if r["error_vs_rounding"] is None else f"{r['error_vs_rounding']:.1f}"
        table.add_row(str(i), r["name"], r["op"], f"{r['sqnr_db']:.1f}", f"{r['rounding_sqnr_db']:.1f}", ratio,
                      f"{r['cosine']:.4f}", f"{r['max_abs_err']:.4g}", f"{r['mean_abs_err']:.4g}", f"{r['scale']:.4g}")
    console = _wide_console()
    console.print(table)
    if doc.get("unmatched"):
        console.print(f"not compared (no counterpart in the reference): {', '.join(doc['unmatched'])}")


def numerics_plot(doc: dict, path) -> None:
    """SQNR by layer (and what rounding alone would give) as a PNG, written atomically."""
    import io as _io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mobilekit.files import PNG_SOFTWARE, write_bytes_atomic

    layers = doc["layers"]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.22 * len(layers)), 4.0))
    x = range(len(layers))
    ax.plot(x, [r["sqnr_db"] for r in layers], "o-", label="int8 vs float")
    ax.plot(x, [r["rounding_sqnr_db"] for r in layers], "--", color="grey", label="rounding alone at that scale")
    ax.set_xticks(list(x), [r["name"] for r in layers], rotation=90, fontsize=6)
    ax.set_ylabel("SQNR (dB)")
    ax.set_title(f"{doc['int8']}: top-1 agreement {doc['output']['top1_agreement']:.1%}")
    ax.legend()
    fig.tight_layout()
    buf = _io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, metadata={"Software": f"{PNG_SOFTWARE} numerics"})
    plt.close(fig)
    write_bytes_atomic(path, buf.getvalue())
