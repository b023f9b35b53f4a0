"""The benchmark's result as the table tools/bench.py prints."""

from __future__ import annotations

import statistics


def fmt(value: float | None, digits: int = 3) -> str:
    """3 significant digits, thousands separated; whole numbers from 1,000 up; "-" for none."""
    if value is None:
        return "-"
    return f"{value:,.{digits}g}" if abs(value) < 10 ** digits else f"{value:,.0f}"


def table(result: dict) -> str:
    """One line per figure, then the FLOPs, the whole epoch's phases, the targets and the
    machine."""
    head = (f"{'measurement':<40}{'prec':<6}{'XLA':<5}{'median':>9}{'min':>9}{'max':>9}  "
            f"{'unit':<9}{'reps':>4}{'MFU':>6}{'xKeras':>8}  note")
    lines = [head, "-" * len(head)]
    for r in result["rows"]:
        xla = "-" if r["xla"] is None else ("yes" if r["xla"] else "no")
        mfu = f"{r['mfu']:.0%}" if r["mfu"] is not None else "-"
        vs = f"{r['vs_baseline']:.2f}" if r["vs_baseline"] is not None else "-"
        lines.append(f"{r['name']:<40}{r['precision']:<6}{xla:<5}{fmt(r['median']):>9}"
                     f"{fmt(r['min']):>9}{fmt(r['max']):>9}  {r['unit']:<9}{r['reps']:>4}"
                     f"{mfu:>6}{vs:>8}  {r['note']}".rstrip())
    flops = result["flops_per_image"]
    lines += ["", f"training FLOPs per image: {flops['training'] / 1e9:.3f} G (3 x "
              f"{flops['forward'] / 1e9:.3f} G forward); MFU = images/s x that / the best matmul "
              "median in the same precision"]
    epoch = result["whole_epoch"]
    if epoch:
        phases = ", ".join(f"{p} {v:.1f} s" for p, v in epoch["projected_phase_seconds"].items())
        full, measured = epoch["full_sizes"], epoch["sizes"]
        lines.append(f"whole epoch ({result['default_precision']}) projected to "
                     f"{full['train']:,}/{full['val']:,}/{full['test']:,} images: "
                     f"{statistics.median(epoch['projected_seconds']):.1f} s = {phases} (medians; "
                     f"measured on {measured['train']}/{measured['val']}/{measured['test']} "
                     "images)")
    for name, t in result["targets"].items():
        value = "-" if t["value"] is None else f"{t['value']:.2f}"
        lines.append(f"target {name} ({t['precision']}): {value} vs goal {t['goal']:.2f}: "
                     f"{'met' if t['met'] else 'MISSED'}")
    load, machine = result["load_average"], result["machine"]
    gpus = f", {', '.join(machine['gpus'])}" if machine["gpus"] else ""
    lines.append(f"{machine['cpu']}, {machine['cores']} cores{gpus}; load average "
                 f"{load['before'][0]:.1f} before, {load['after'][0]:.1f} after; "
                 f"{result['seconds']:.0f} s")
    return "\n".join(lines)
