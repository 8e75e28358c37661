"""Plots (matplotlib, PNG) and explore.md from a sweep's results.json; no training, no Ray.

``mobilekit explore --report DIR`` calls :func:`render` alone.
"""

from __future__ import annotations

from pathlib import Path

from mobilekit.files import write_text_atomic
from mobilekit.errors import MobilekitError
from mobilekit.json_files import read_record
from mobilekit.schema import SweepResults


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> str:
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    tmp.replace(path)
    return path.name


def _label(row: dict, knobs: list[str]) -> str:
    parts = [row["arch"]] + [f"{k}={row[k]}" for k in knobs if row.get(k) is not None]
    return " ".join(parts)


def _front_line(ax, rows: list[dict], x: str, scale: float):
    front = sorted((r for r in rows if r["pareto"] and r.get(x) is not None), key=lambda r: r[x])
    if front:
        ax.step([r[x] * scale for r in front], [r["accuracy_int8"] * 100 for r in front], where="post",
                color="tab:red", lw=1.2, label="Pareto front")


def trade_off_plot(doc: dict, out: Path, x: str, xlabel: str, scale: float, name: str,
                   target_x: float | None, target_label: str) -> str | None:
    """Accuracy (y) against ``x`` for every ok point, the front, the targets and the recommended point."""
    rows = [r for r in doc["rows"] if r["status"] == "ok" and r.get(x) is not None]
    if not rows:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    archs = sorted({r["arch"] for r in rows})
    for i, arch in enumerate(archs):
        pts = [r for r in rows if r["arch"] == arch]
        ax.scatter([r[x] * scale for r in pts], [r["accuracy_int8"] * 100 for r in pts], s=22,
                   color=f"C{i}", label=arch, alpha=0.8)
    _front_line(ax, rows, x, scale)
    targets = doc["sweep"]["targets"]
    if targets.get("min_accuracy") is not None:
        ax.axhline(targets["min_accuracy"] * 100, color="grey", ls="--", lw=1, label="min accuracy")
    if target_x is not None:
        ax.axvline(target_x, color="grey", ls=":", lw=1, label=target_label)
    rec = next((r for r in rows if r["point"] == doc.get("recommended")), None)
    if rec is not None:
        ax.scatter([rec[x] * scale], [rec["accuracy_int8"] * 100], marker="*", s=220, color="gold",
                   edgecolor="black", zorder=5, label="recommended")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(_axis(doc["sweep"]))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    name = _save(fig, out / name)
    plt.close(fig)
    return name


def _axis(sweep: dict) -> str:
    """The accuracy axis: the int8 file's top-1, or a detector sweep's mAP@0.5."""
    return f"int8 {sweep.get('metric', 'top-1')} (%)"


def saturation_plot(sat: dict, out: Path, sweep: dict | None = None) -> str:
    """The SqueezeNet paper's Figure 2 style: mean accuracy per knob value with error bars (seeds' sd)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    c = sat["curve"]
    ax.errorbar([p["value"] for p in c], [p["mean"] * 100 for p in c], yerr=[p["std"] * 100 for p in c],
                marker="o", capsize=4, lw=1.4)
    s = next(p for p in c if p["value"] == sat["saturation_value"])
    ax.scatter([s["value"]], [s["mean"] * 100], s=160, facecolors="none", edgecolors="tab:red", lw=2,
               label=f"saturation: {sat['knob']}={s['value']:g}", zorder=5)
    ax.set_xlabel(sat["knob"])
    ax.set_ylabel(_axis(sweep or {}))
    over = f"mean of {sat['seeds']} seed(s) per value" if sat["on_axis"] else "mean over the other knobs"
    ax.set_title(f"{sat['knob']}: {over}, error bars: sd", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    name = _save(fig, out / f"saturation_{sat['knob']}.png")
    plt.close(fig)
    return name


def plots(doc: dict, out: Path) -> list[str]:
    sweep = doc["sweep"]
    t = sweep["targets"]
    made = [trade_off_plot(doc, out, "size_gzip_bytes", "int8 .tflite, gzip'd (KiB)", 1 / 1024,
                           "accuracy_vs_size.png", t.get("max_size_kb"), "max size")]
    if sweep.get("device"):
        fps = t.get("fps")
        made.append(trade_off_plot(doc, out, "latency_device_ms", f"predicted latency on {sweep['device']} (ms)", 1,
                                   "accuracy_vs_latency.png", 1e3 / fps if fps else None, f"{fps:g} FPS" if fps else ""))
    else:
        made.append(trade_off_plot(doc, out, "latency_host_ms", "host latency, batch 1, 1 thread (ms)", 1,
                                   "accuracy_vs_latency.png", None, ""))
    made += [saturation_plot(s, out, sweep) for s in doc["saturation"].values()]
    return [m for m in made if m]


def _fmt(v, kind: str) -> str:
    if v is None or v == "":
        return ""
    return {"pct": f"{v:.2%}", "kib": f"{v / 1024:,.1f}", "ms": f"{v:.2f}", "int": f"{v:,}",
            "mj": f"{v:.3g}"}.get(kind, str(v))


def markdown(doc: dict, images: list[str]) -> str:
    sweep = doc["sweep"]
    knobs = [k for k in sweep["space"] if k != "arch"]
    n = doc["counts"]
    lines = ["# Design-space exploration", "",
             f"Search `{sweep['search']}` over {', '.join(sweep['archs'])}; knobs: "
             + (", ".join(f"`{k}` = {sweep['space'][k]}" for k in knobs) or "none")
             + f"; {sweep['seeds']} seed(s) per design; objectives: "
             + ", ".join(f"{c} ({m})" for c, m in sweep["objectives"]) + ".",
             f"Targets: {', '.join(f'{k}={v:g}' for k, v in sweep['targets'].items() if v is not None) or 'none'}"
             + (f"; device {sweep['device']}" if sweep.get("device") else "") + ".", "",
             f"Points: {n['ok']} ok, {n['failed']} failed, {n['screened_out']} screened out before training.", ""]
    over = [r["point"] for r in doc["rows"] if r["status"] == "ok" and r.get("within_budget") is False]
    if over:
        lines += [f"**{len(over)} point(s) over their accuracy budget** (int8 against float on the validation split; "
                  "marked, not on the Pareto front, never recommended): " + ", ".join(f"`{p}`" for p in over), ""]
    if doc["screened_out"]:
        lines += ["Screened out (never trained):", ""]
        lines += [f"- `{pid}`: {why}" for pid, why in doc["screened_out"].items()] + [""]
    rec = next((r for r in doc["rows"] if r["point"] == doc.get("recommended")), None)
    if rec:
        lines += [f"**Recommended point**: `{rec['point']}` ({_label(rec, knobs)}, seed {rec['seed']}): int8 "
                  f"{sweep.get('metric', 'accuracy')} "
                  f"{_fmt(rec['accuracy_int8'], 'pct')}, {_fmt(rec['size_gzip_bytes'], 'kib')} KiB gzip'd"
                  + (f", {rec['latency_device_ms']:.2f} ms on {sweep['device']}" if rec.get("latency_device_ms")
                     else "") + f" — the most accurate point that meets every target. File: `{rec['tflite']}`.", ""]
    else:
        lines += ["**No point meets every target.**", ""]
    lines += [f"| point | design | seed | status | int8 {sweep.get('metric', 'acc')} | gzip KiB | host ms | device ms | "
              "mJ/frame | params | "
              "MACs | Pareto |", "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in doc["rows"]:
        lines.append(f"| `{r['point']}` | {_label(r, knobs)} | {r['seed']} | {r['status']} | "
                     f"{_fmt(r['accuracy_int8'], 'pct')} | {_fmt(r['size_gzip_bytes'], 'kib')} | "
                     f"{_fmt(r['latency_host_ms'], 'ms')} | {_fmt(r['latency_device_ms'], 'ms')} | "
                     f"{_fmt(r['energy_mj'], 'mj')} | {_fmt(r['params'], 'int')} | {_fmt(r['macs'], 'int')} | "
                     f"{'yes' if r['pareto'] else 'over budget' if r.get('within_budget') is False else ''} |")
    lines.append("")
    for s in doc["saturation"].values():
        lines.append(f"Saturation of `{s['knob']}`: **{s['saturation_value']:g}** (best mean "
                     f"{s['best_mean']:.2%}, {s['method']}"
                     + (f", margin {s['margin']:.2%}" if s["noise_std"] is not None else "") + ").")
    lines += [""] + [f"![{name}]({name})" for name in images] + [""]
    return "\n".join(lines)


def _damaged(path: Path, what: str) -> MobilekitError:
    return MobilekitError(f"{str(path)!r} is damaged: {what}; run the sweep again to rewrite it")


def render(sweep_dir: str | Path) -> dict:
    """Plots and explore.md from ``DIR/results.json``; returns the results document.

    Raises:
        MobilekitError: no results.json, or one that is not a sweep's (the damaged part is named).
    """
    out = Path(sweep_dir)
    path = out / "results.json"
    if not path.is_file():
        raise MobilekitError(f"no sweep results in {str(out)!r} (results.json missing)")
    try:
        doc = read_record(path, SweepResults, "sweep results").to_dict()
    except MobilekitError as e:
        raise _damaged(path, str(e).removeprefix(f"sweep results {str(path)!r}").lstrip(": ")) from None
    try:
        images = plots(doc, out)
        text = markdown(doc, images)
    except MobilekitError:
        raise
    except ValueError as e:
        raise _damaged(path, str(e).splitlines()[0][:200] if str(e) else "not valid JSON") from None
    except (KeyError, TypeError, AttributeError, IndexError) as e:  # a value of the wrong kind deeper inside
        raise _damaged(path, f"{type(e).__name__} {str(e)[:150]}") from None
    write_text_atomic(out / "explore.md", text)
    return doc
