#!/usr/bin/env python3
"""Turns the JSON of bench/compare.sh's runs into docs/performance.md and a bar chart
(an SVG written here, no plotting library needed).

Each figure is the median of the runs that completed; a run that stopped short (its
JSON says "complete": false) is left out and counted in the table.
"""

import argparse
import datetime
import glob
import html
import json
import os
import platform
import statistics
import subprocess

SERVERS = ["natter", "ngircd", "inspircd", "ircd-hybrid"]
NAMES = {"natter": "natter", "ngircd": "ngircd", "inspircd": "InspIRCd", "ircd-hybrid": "ircd-hybrid"}

# (key, label, scenario, how to read the JSON, higher is better, target for natter vs
# the best reference: ("ratio", 2.0) = at least 2x; ("not-above", 1.0) = no higher)
METRICS = [
    ("fanout", "room fan-out, deliveries/s", "fanout",
     lambda j: j["results"].get("deliveries_per_sec"), True, ("ratio", 2.0)),
    ("dm", "direct messages/s", "dm",
     lambda j: j["results"].get("messages_per_sec"), True, ("ratio", 2.0)),
    ("p50", "paced fan-out latency p50 (ms)", "fanout-paced",
     lambda j: (j.get("latency_ms") or {}).get("p50"), False, None),
    ("p99", "paced fan-out latency p99 (ms)", "fanout-paced",
     lambda j: (j.get("latency_ms") or {}).get("p99"), False, ("not-above", 1.0)),
    ("mem", "memory per idle client (KiB)", "idle",
     lambda j: j["results"].get("kib_per_client"), False, ("not-above", 1.0)),
    ("connect", "registrations/s", "connect",
     lambda j: j["results"].get("registrations_per_sec"), True, ("ratio", 2.0)),
]


def load(results_dir):
    runs = {}
    for path in sorted(glob.glob(os.path.join(results_dir, "*.json"))):
        label, scenario, run = os.path.basename(path)[:-5].rsplit(".", 2)
        with open(path) as f:
            runs.setdefault((label, scenario), []).append(json.load(f))
    return runs


def median_of(runs, label, scenario, read):
    done = [j for j in runs.get((label, scenario), []) if j.get("complete")]
    values = [v for v in (read(j) for j in done) if v is not None]
    total = len(runs.get((label, scenario), []))
    return (statistics.median(values) if values else None), len(values), total


def fmt(v, key):
    if v is None:
        return "—"
    if key in ("p50", "p99", "mem"):
        return f"{v:.2f}"
    return f"{v:,.0f}"


def machine():
    def run(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
        except Exception:  # noqa: BLE001 - a missing tool leaves the field empty
            return ""
    model = ""
    for line in run(["lscpu"]).splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    mem_kib = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    return {
        "cpu": model or platform.processor() or "unknown",
        "cores": os.cpu_count(),
        "memory": f"{mem_kib / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "os": run(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]).strip(),
    }


def svg_chart(rows, servers):
    """Grouped bars: for each metric, each server's figure relative to the best
    reference (1.0), turned so that taller is better for every metric."""
    colors = {"natter": "#d9480f", "ngircd": "#1971c2", "inspircd": "#2f9e44", "ircd-hybrid": "#7048e8"}
    groups = [r for r in rows if r["key"] != "p50"]
    width, height = 960, 440
    left, right, top, bottom = 60, 20, 50, 110
    plot_w, plot_h = width - left - right, height - top - bottom
    rel = {}
    for r in groups:
        best = r["best"]
        for s in servers:
            v = r["values"].get(s)
            if v is None or best is None or v == 0 or best == 0:
                rel[(r["key"], s)] = None
            else:
                rel[(r["key"], s)] = v / best if r["higher"] else best / v
    top_value = max([x for x in rel.values() if x is not None] + [1.0])
    scale = 1.0
    while scale < top_value:
        scale *= 2
    group_w = plot_w / max(len(groups), 1)
    bar_w = group_w * 0.8 / max(len(servers), 1)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="15">'
           'natter and the reference servers, relative to the best reference (higher is better)</text>']
    for i in range(0, 5):
        v = scale * i / 4
        y = top + plot_h - plot_h * v / scale
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{v:g}x</text>')
    y1 = top + plot_h - plot_h / scale
    out.append(f'<line x1="{left}" x2="{width - right}" y1="{y1:.1f}" y2="{y1:.1f}" '
               'stroke="#555" stroke-dasharray="4 3"/>')
    for gi, r in enumerate(groups):
        gx = left + gi * group_w + group_w * 0.1
        for si, s in enumerate(servers):
            x = gx + si * bar_w
            v = rel[(r["key"], s)]
            if v is None:
                out.append(f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h - 4}" '
                           'text-anchor="middle" fill="#999">n/a</text>')
                continue
            h = plot_h * v / scale
            raw = html.escape(fmt(r["values"][s], r["key"]))
            out.append(f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w - 2:.1f}" '
                       f'height="{h:.1f}" fill="{colors.get(s, "#888")}">'
                       f'<title>{html.escape(NAMES.get(s, s))}: {raw}</title></rect>')
            out.append(f'<text x="{x + bar_w / 2 - 1:.1f}" y="{top + plot_h - h - 4:.1f}" '
                       f'text-anchor="middle" font-size="10">{raw}</text>')
        label = html.escape(r["label"])
        out.append(f'<text x="{gx + group_w * 0.4:.1f}" y="{top + plot_h + 18}" '
                   f'text-anchor="middle">{label}</text>')
    for si, s in enumerate(servers):
        x = left + si * 150
        y = height - 30
        out.append(f'<rect x="{x}" y="{y - 10}" width="12" height="12" fill="{colors.get(s, "#888")}"/>')
        out.append(f'<text x="{x + 18}" y="{y}">{html.escape(NAMES.get(s, s))}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--commands", required=True)
    ap.add_argument("--versions", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", required=True)
    ap.add_argument("--server-cpu", default="0")
    ap.add_argument("--gen-cpu", default="1")
    a = ap.parse_args()

    runs = load(a.results)
    servers = [s for s in SERVERS if any(k[0] == s for k in runs)]
    refs = [s for s in servers if s != "natter"]
    versions = {}
    with open(a.versions) as f:
        for line in f:
            if "=" in line:
                k, v = line.strip().split("=", 1)
                versions[k] = v
    loads = [j.get("load_average_1m") for js in runs.values() for j in js
             if j.get("load_average_1m") is not None]

    rows = []
    for key, label, scenario, read, higher, target in METRICS:
        values, counts = {}, {}
        for s in servers:
            v, ok, total = median_of(runs, s, scenario, read)
            values[s] = v
            counts[s] = (ok, total)
        ref_values = [values[s] for s in refs if values[s] is not None]
        best = (max(ref_values) if higher else min(ref_values)) if ref_values else None
        rows.append({"key": key, "label": label, "values": values, "counts": counts,
                     "best": best, "higher": higher, "target": target})

    lines = []
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    m = machine()
    lines.append("# Performance\n")
    lines.append(f"Measured by `bench/compare.sh` on {now}: natter and the IRC servers people run "
                 "today, on one machine, under the same load from `natter bench`. Each figure is "
                 f"the median of {a.runs} run(s); a run that did not complete its counts is left "
                 "out (the cell then says how many completed).\n")
    lines.append("## Results\n")
    head = "| metric | " + " | ".join(NAMES.get(s, s) for s in servers)
    if "natter" in servers and refs:
        head += " | natter vs best reference | target |"
    else:
        head += " |"
    lines.append(head)
    lines.append("|" + " --- |" * (head.count("|") - 1))
    for r in rows:
        cells = []
        for s in servers:
            v = r["values"][s]
            ok, total = r["counts"][s]
            cell = fmt(v, r["key"])
            if total and ok < total:
                cell += f" ({ok}/{total} runs)"
            if total == 0:
                cell = "not run"
            cells.append(cell)
        line = f"| {r['label']} | " + " | ".join(cells)
        if "natter" in servers and refs:
            nat, best = r["values"].get("natter"), r["best"]
            if nat is None or best is None or nat == 0 or best == 0:
                ratio, verdict = "—", ""
            elif r["higher"]:
                ratio = f"{nat / best:.2f}x"
            else:
                ratio = f"{nat / best:.2f}x ({'lower' if nat < best else 'higher'})"
            target = r["target"]
            if target is None or nat is None or best is None:
                verdict = "" if target is None else ("≥ 2x" if target[0] == "ratio" else "no higher")
            elif target[0] == "ratio":
                verdict = f"≥ {target[1]:g}x: " + ("met" if nat >= target[1] * best else "not met")
            else:
                verdict = "no higher: " + ("met" if nat <= best else "not met")
            line += f" | {ratio} | {verdict} |"
        else:
            line += " |"
        lines.append(line)
    lines.append("")

    if "natter" in servers:
        lines.append("### natter only\n")
        tcp, _, _ = median_of(runs, "natter", "fanout", METRICS[0][3])
        udp, ok, total = median_of(runs, "natter", "fanout-udp", METRICS[0][3])
        if total:
            share = f"{udp / tcp * 100:.0f}% of TCP" if udp and tcp else "—"
            lines.append(f"- Reliable UDP fan-out: {fmt(udp, 'fanout')} deliveries/s "
                         f"({ok}/{total} runs completed, each right after natter's TCP fan-out), "
                         f"{share} (target: at least 80%).")
            failed = [j for j in runs.get(("natter", "fanout-udp"), []) if not j.get("complete")]
            for j in failed[:1]:
                res = j["results"]
                errs = "; ".join(f"{e['error']} ({e['count']}x)" for e in j.get("errors", []))
                lines.append(f"  A run that stopped short delivered {res.get('delivered', 0):,.0f} of "
                             f"{res.get('expected', 0):,.0f} in {j.get('elapsed_s', 0):.1f} s: {errs}")
        many = runs.get(("natter", "idle-many"), [])
        for j in many:
            res = j["results"]
            lines.append(f"- {res.get('clients', 0):,.0f} clients held at once, "
                         f"{res.get('alive', 0):,.0f} still answering PING "
                         f"({res.get('kib_per_client', 0):.2f} KiB each); "
                         f"{'complete' if j.get('complete') else 'INCOMPLETE'}"
                         f" (asked for {j['parameters'].get('clients')}).")
        lines.append("")

    chart = os.path.splitext(a.out)[0] + ".svg"
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(chart, "w") as f:
        f.write(svg_chart(rows, servers))
    lines.append(f"![natter and the reference servers]({os.path.basename(chart)})\n")

    lines.append("## The machine\n")
    lines.append(f"- CPU: {m['cpu']}, {m['cores']} cores; memory {m['memory']}")
    lines.append(f"- {m['os']}, Linux {m['kernel']}")
    lines.append(f"- server pinned to CPU {a.server_cpu}, generator to CPU {a.gen_cpu} (`taskset`)")
    if loads:
        lines.append(f"- 1-minute load average at the start of the runs: {min(loads):.2f} to "
                     f"{max(loads):.2f} (the machine is shared; a high load lowers every figure)")
    for s in servers:
        if s in versions:
            lines.append(f"- {NAMES.get(s, s)}: {versions[s]}")
    lines.append("")

    lines.append("## How\n")
    lines.append("- Every run starts its server afresh: natter with a new data directory and "
                 "its persistence on (messages are committed before they are acknowledged), "
                 "the references with the configurations in `bench/configs/`.")
    lines.append("- Flood limits are lifted by configuration for every server alike: natter "
                 "`--flood-burst 0 --flood-rate 0 --connections-per-ip 0 --max-connections 0`; "
                 "ngircd `MaxPenaltyTime = 0` and no connection limits; InspIRCd `fakelag=\"no\"` "
                 "with a threshold and command rate no run reaches, 1 MB queues and no per-IP "
                 "limits; ircd-hybrid `can_flood`, no flood count, no connection throttle, no "
                 "per-IP limits. No server does DNS or ident lookups (natter does neither).")
    lines.append("- fan-out: C members in one room, S of them pipelining M messages; "
                 "deliveries/s = S×M×(C−1) over the time from the first send to the last "
                 "delivery. dm: P pairs, each client sending M messages to the other. Paced "
                 "fan-out: every message carries its send time; latency is measured at every "
                 "receiver. idle: the server's resident memory (VmRSS) after N clients "
                 "registered, minus before, over N. connect: connect, register (to the end of "
                 "the MOTD), QUIT, with K under way at once.")
    lines.append("")
    lines.append("Commands (each run, after starting its server):\n")
    lines.append("```")
    with open(a.commands) as f:
        seen = []
        for line in f:
            line = line.strip()
            if line and line not in seen:
                seen.append(line)
    lines.extend(seen)
    lines.append("```")
    lines.append("")
    lines.append("Reproduce with `bench/compare.sh` (as root: it installs the reference servers "
                 "from Debian if they are missing); `bench/compare.sh --quick` checks the setup "
                 "in about a minute.")
    notes = os.path.join(os.path.dirname(os.path.abspath(__file__)), "notes.md")
    if os.path.exists(notes):
        with open(notes) as f:
            lines.append("")
            lines.append(f.read().rstrip("\n"))
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
