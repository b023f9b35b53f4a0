"""The benchmark's result as the table tools/bench.py prints."""

from __future__ import annotations


def fmt(value: float | None, digits: int = 3) -> str:
    """3 significant digits, thousands separated; whole numbers from 1,000 up; "-" for none."""
    if value is None:
        return "-"
    return f"{value:,.{digits}g}" if abs(value) < 10 ** digits else f"{value:,.0f}"


def spread(entry: dict | None, unit: str = "x") -> str:
    """A value with its min and max: "1.52x (min 1.45, max 1.60)"; "-" for none."""
    if not entry or entry["value"] is None:
        return "-"
    if entry.get("min") is None:
        return f"{fmt(entry['value'])}{unit}"
    return (f"{fmt(entry['value'])}{unit} (min {fmt(entry['min'])}, "
            f"max {fmt(entry['max'])})")


def row_lines(rows: list[dict]) -> list[str]:
    head = (f"{'measurement':<46}{'prec':<6}{'median':>9}{'min':>9}{'max':>9}  {'unit':<9}"
            f"{'reps':>4}{'MFU':>6}  note")
    lines = [head, "-" * len(head)]
    for r in rows:
        mfu = f"{r['mfu']:.0%}" if r["mfu"] is not None else "-"
        lines.append(f"{r['name']:<46}{r['precision']:<6}{fmt(r['median']):>9}"
                     f"{fmt(r['min']):>9}{fmt(r['max']):>9}  {r['unit']:<9}{r['reps']:>4}"
                     f"{mfu:>6}  {r['note']}".rstrip())
    return lines


def epoch_lines(result: dict) -> list[str]:
    """What the epoch rows counted, and train.py's speed-up over each plain Keras precision."""
    sizes = result["epoch_sizes"]
    full = ("full size" if sizes["full_size"] else
            "NOT the full 45,000 / 5,000 / 10,000: the targets are not comparable")
    lines = [f"epoch: {sizes['train']:,} train / {sizes['val']:,} val / {sizes['test']:,} test "
             f"images ({full}). \"the epoch\" is train.py's history.csv seconds (training, "
             "validation and test evaluation, tracing included; not start-up or saving) and the "
             "same span of the plain script; \"whole process\" is the process's wall time."]
    for p, skip in result["baselines"].items():
        pair = result["ratios"][f"vs_plain_keras_{p}"]
        if skip or pair["epoch"] is None:
            lines.append(f"train.py vs plain Keras {p}: {skip or 'not measured'}")
            continue
        lines.append(f"train.py vs plain Keras {p}: {spread(pair['epoch'])} by the epoch, "
                     f"{spread(pair['process'])} by the whole process (ratio of medians; min and "
                     f"max over {pair['epoch']['pairs']} paired repetitions)")
    return lines


def target_line(name: str, t: dict) -> str:
    goal = f"goal {'<=' if t['better'] == 'lower' else '>='} {fmt(t['goal'])}"
    verdict = ("not measured" if t["value"] is None else "not comparable" if not t["comparable"]
               else "met" if t["met"] else "MISSED")
    unit = " s" if name == "epoch_seconds" else ""
    return f"target {name}: {spread(t, unit)}, {goal}: {verdict}"


def table(result: dict) -> str:
    """The rows, then the epoch's sizes and ratios, the matmul check, the FLOPs, the targets and
    the machine."""
    lines = [*row_lines(result["rows"]), "", *epoch_lines(result)]
    check = result["matmul_check"]
    if check:
        lines.append(f"matmul bf16/fp32: {check['bf16_over_fp32']:.2f} (at most 2 where "
                     f"AVX512-BF16 computes bf16){'; ' + check['note'] if check['note'] else ''}")
    flops = result["flops_per_image"]
    lines.append(f"training FLOPs per image: {flops['training'] / 1e9:.3f} G (3 x "
                 f"{flops['forward'] / 1e9:.3f} G forward); MFU = images/s x that / the best "
                 "matmul median in the same precision")
    lines += [target_line(name, t) for name, t in result["targets"].items()]
    load, machine = result["load_average"], result["machine"]
    gpus = f", {', '.join(machine['gpus'])}" if machine["gpus"] else ""
    lines.append(f"{machine['cpu']}, {machine['cores']} cores{gpus}; load average "
                 f"{load['before'][0]:.1f} before, {load['after'][0]:.1f} after; "
                 f"{result['seconds']:.0f} s")
    return "\n".join(lines)
