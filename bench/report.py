"""Markdown tables from the bench's JSON result (bench/boot_stats.py)."""

from __future__ import annotations

from typing import List, Optional


def _s(summary: Optional[dict], fmt: str = "{:.3f}", scale: float = 1.0) -> str:
    """median (min-max), or a dash when nothing was measured."""
    if not summary:
        return "-"
    f = lambda v: fmt.format(v * scale)  # noqa: E731
    return f"{f(summary['median'])} ({f(summary['min'])}-{f(summary['max'])})"


def _table(header: List[str], rows: List[List[str]]) -> List[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def markdown(r: dict) -> str:
    m = r["meta"]
    lines = [
        f"### ballast bench ({m['accel'].upper()}, {m.get('host', '?')}: {m['qemu']}, git {m['git']}, "
        f"{m['cpus']} CPUs, load {m['loadavg_before'][0]:.2f} before / "
        f"{m['loadavg_after'][0]:.2f} after, total {m['runtime_s']:.0f} s)",
        "",
        f"Boot, -m {m['memory']}, {m['runs']} runs per row, seconds from QEMU start: "
        "median (min-max). The trivial image runs on the same command line as ballast.",
        "",
    ]
    rows = []
    for name, b in r["boot"].items():
        t = r["trivial"][name]
        ratio = r["ratios"].get(name)
        rows.append([
            f"{name} ({b['device']})", _s(t["exit_s"]), _s(b["ready_s"]),
            f"{ratio['ready_over_trivial']:.2f}" if ratio else "-",
            _s(b["first_stats_s"]), _s(b["kernel_boot_ms"], "{:.1f}"),
        ])
    lines += _table(["path", "trivial image: exit", "ballast: ready", "ready / trivial",
                     "first stats on the host", "kernel entry to ready (ms, TSC)"], rows)

    lines += ["", "Targets (issue 13, TCG; reported, not asserted): median ready / median "
              "trivial, and the per-round paired ratio.", ""]
    rows = []
    for name, ratio in r["ratios"].items():
        if ratio["target"] is None:
            continue
        fn = ratio.get("firmware_normalized")
        rows.append([name, f"{ratio['ready_over_trivial']:.2f}", _s(ratio["paired"], "{:.2f}"),
                     f"{fn:.3f}" if fn else "-",
                     f"<= {ratio['target']}", "yes" if ratio["within_target"] else "no"])
    lines += _table(["path", "ratio", "paired ratio", "firmware-normalized (EFI)", "target",
                     "within (ratio)"], rows)

    efi = [(n, b) for n, b in r["boot"].items() if b["boot"] == "efi"]
    if efi:
        lines += ["", "EFI phases, seconds from QEMU start, median (min-max): OVMF's boot manager "
                  "lines on the serial console, then the image.", ""]
        rows = []
        for name, b in efi:
            t = r["trivial"][name]
            rows.append([f"{name} trivial app", _s(t["bds_loading_s"]), _s(t["bds_starting_s"]),
                         "-", _s(t["exit_s"]), _s(t.get("image_share_s"))])
            rows.append([f"{name} ballast", _s(b["bds_loading_s"]), _s(b["bds_starting_s"]),
                         _s(b["booting_s"]), _s(b["ready_s"]), _s(b.get("image_share_s"))])
        lines += _table(["run", "BdsDxe: loading", "BdsDxe: starting", "ballast: booting",
                         "exit / ready", "image share (loading to exit / ready)"], rows)
        lines += ["", "firmware-normalized: (trivial exit - trivial image share + ballast image "
                  "share) / trivial exit, medians; the firmware phase swings by seconds with "
                  "host load."]

    if r["stats_latency"]:
        lines += ["", "Stats answer latency (polling interval 1 s), microseconds.", ""]
        rows = []
        for name, lat in r["stats_latency"].items():
            name = f"{name} ({lat.get('interrupts', '?')})"
            labels = {"flush_to_pop": "host, QEMU trace: buffer flushed to guest -> re-added "
                                      "buffer popped",
                      "notify_to_kick": "host, QEMU trace: virtio_notify -> guest's queue notify"}
            for key, label in labels.items():
                h = lat["host"].get(key)
                if h:
                    rows.append([name, label, str(h["samples"]), f"{h['p50_us']}",
                                 f"{h['p99_us']}", f"{h['max_us']}"])
            g = lat["guest"]
            if g:
                rows.append([name, "guest, `stats latency`: request interrupt handler -> kick "
                             "(TSC)", str(g.get("samples", "-")),
                             f"{g['p50_ns'] / 1000:.0f}", f"{g['p99_ns'] / 1000:.0f}",
                             f"{g['max_ns'] / 1000:.0f}"])
        lines += _table(["path (interrupts)", "figure", "samples", "p50", "p99", "max"], rows)

    if r["throughput"]:
        lines += ["", "Balloon throughput, half of RAM, pages (4 KiB) per second: QMP "
                  "`balloon` to query-balloon `actual` at the target; median (min-max).", ""]
        rows = []
        for name, t in r["throughput"].items():
            n = t["inflate_pages_s"]["n"] if t["inflate_pages_s"] else 0
            rows.append([f"{name}, -m {t['memory']}", f"{t['pages']}", str(n),
                         _s(t["inflate_pages_s"], "{:,.0f}"), _s(t["deflate_pages_s"], "{:,.0f}")])
        lines += _table(["path", "pages", "cycles", "inflate (pages/s)", "deflate (pages/s)"],
                        rows)

    lines += ["", "Image sizes (bytes).", ""]
    lines += _table(["image", "bytes"],
                    [[k, str(v) if v is not None else "missing"] for k, v in r["images"].items()])

    if r["errors"]:
        lines += ["", f"{len(r['errors'])} measurement(s) failed:"]
        lines += [f"- {e['what']}: {e['error'].splitlines()[0]}" for e in r["errors"]]
    return "\n".join(lines)
