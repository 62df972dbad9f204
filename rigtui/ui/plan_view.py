"""The plan of a profile as the Profiles screen shows it under the file: fit, bytes per token,
the ceilings with their basis, each placement with its llama-server flags (markup, pure)."""

from __future__ import annotations

from typing import Any

from rigtui.ui.fmt import escape, human_bytes


def _rate(fig: Any, digits: int = 1) -> str:
    return f"{fig.value:,.{digits}f} tok/s" if fig.value else "? tok/s"


def render_plan(plan: Any, name: str) -> str:
    """`rigtui plan --profile NAME` in a dozen lines."""
    fit = plan.fit
    nodes = [n for n in fit["nodes"]]
    where = next((n for n in nodes if n.fits), None)
    ram = (f"fits {escape(where.target)}" if where is not None
           else "[$error]does not fit this machine's memory[/]")  # fmt: skip
    bw = plan.bandwidth_gbs
    basis = (f"{bw.basis} {bw.value:.1f} GB/s" if bw.value
             else "memory bandwidth unknown: rigtui bench mem")  # fmt: skip
    lines = [
        f"[b]Plan on this machine[/] [$text-muted](rigtui plan --profile {escape(name)})[/]",
        f"  RAM {human_bytes(fit['cpu_bytes'])} ({ram}) · GPUs {human_bytes(fit['gpu_bytes'])}",
        f"  {plan.bytes_per_token.value / 1e9:.3f} GB read per token · [$text-muted]{basis}[/]",
        f"  generation ≤ {_rate(plan.predicted_tg_tok_s)} · prompt ≤ "
        f"{_rate(plan.predicted_pp_tok_s, 0)}",
    ]
    if len(plan.placements) > 1:
        lines.append("  [b]placements[/] [$text-muted](* suggested)[/]")
        for p in plan.placements:
            ok = "[$success]fits[/]" if p.fits else "[$error]does not fit[/]"
            star = "[b]*[/]" if p.suggested else " "
            lines.append(f"  {star} {escape(p.title)}")
            pp = (f" · prompt ≤ {_rate(p.pp_tok_s, 0)} (PCIe)"
                  if p.pp_tok_s is not None and p.pp_tok_s.value else "")  # fmt: skip
            lines.append(f"      {ok} · {_rate(p.tg_tok_s)}{pp} · [$text-muted]"
                         f"{escape(' '.join(p.flags))}[/]")  # fmt: skip
    if plan.use_cases:
        style = {"interactive": "$success", "background": "$warning", "offline": "$warning",
                 "non-viable": "$error"}  # fmt: skip
        cases = " · ".join(f"{u.id} [{style.get(u.verdict, '$text-muted')}]{u.verdict}[/]"
                           for u in plan.use_cases)  # fmt: skip
        lines.append(f"  use cases {cases}")
    for w in plan.warnings:
        lines.append(f"  [$warning]{escape(w)}[/]")
    return "\n".join(lines)
