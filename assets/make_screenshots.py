"""Regenerate the README screenshots in assets/ (SVG, via Textual's save_screenshot).

    .venv/bin/python assets/make_screenshots.py

- dashboard-demo.svg: this machine, live, with the `demo` profile launched, prompted a few
  times, and shot while it generates (tok/s and the estimated memory traffic visible). Real: the
  engine, its tok/s, placement and model pages; the traffic is the sampler's labelled estimate
  (bytes per token x tok/s: this VM has no memory counters);
- topology-2socket.svg / dashboard-2socket.svg: the hwloc fixture 32em64t-2n8c+dax+nvme+mic+dimms
  (needs ../shared/fixtures) plus a constructed GPU on node 1, with constructed samples;
- profiles.svg, checks.svg: this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))  # ui_helpers: constructed samples


def preserve_spaces(path: Path) -> None:
    """Textual writes spaces as &#160; in <text> elements; librsvg (rsvg-convert, many image
    viewers) drops a leading one and stretches the rest over the textLength, so 'READY demo'
    reads 'READYdemo'. xml:space="preserve" keeps them; browsers render it the same."""
    text = path.read_text()
    if 'xml:space="preserve"' not in text:
        path.write_text(text.replace("<svg ", '<svg xml:space="preserve" ', 1))


async def shoot(app, name: str, size: tuple[int, int], steps) -> None:
    async with app.run_test(size=size) as pilot:
        await steps(pilot)
        app.save_screenshot(str(HERE / name))
        preserve_spaces(HERE / name)
        print("wrote", HERE / name)
        await app.action_quit()  # stops engines in a worker; wait for it, at most its cap
        for _ in range(80):
            if not app.is_running:
                break
            await pilot.pause(0.1)


async def main(prompts: int) -> None:
    from rigtui.cli import build_parser
    from rigtui.commands.tui import build_services
    from rigtui.model.engine import EngineState
    from rigtui.ui.app import RigApp

    args = build_parser().parse_args(["--launch", "demo"])
    app = RigApp(build_services(args))

    async def demo(pilot) -> None:
        for _ in range(600):
            await pilot.pause(0.1)
            if app.engine_stats and app.engine_stats.state is EngineState.READY:
                break
        for i in range(prompts):
            app.send_prompt(f"Tell me about memory channels, part {i}", max_tokens=48)
            for _ in range(300):
                await pilot.pause(0.1)
                if app.engine_stats.state is EngineState.READY and app.transcript[-1] == "\n":
                    break
            await pilot.pause(1.0)
        # shoot while generating: live tok/s, and the traffic estimate the sampler derives
        app.send_prompt("Now a long story about NUMA nodes and memory bandwidth", max_tokens=512)
        for _ in range(300):
            await pilot.pause(0.1)
            t = app.latest.memory_traffic if app.latest else ()
            generating = app.engine_stats.state is EngineState.GENERATING
            if generating and app.engine_stats.gen_tok_s and any(m.available for m in t):
                break
        await pilot.pause(2.5)  # a few more samples of the estimate

    await shoot(app, "dashboard-demo.svg", (120, 36), demo)

    async def go(key: str, wait: float):
        async def steps(pilot) -> None:
            await pilot.press(key)
            await pilot.pause(wait)

        return steps

    app = RigApp(build_services(build_parser().parse_args([])))
    await shoot(app, "profiles.svg", (120, 36), await go("p", 1.0))
    app = RigApp(build_services(build_parser().parse_args([])))
    await shoot(app, "checks.svg", (120, 36), await go("c", 2.0))

    archive = (
        REPO.parent / "shared" / "fixtures" / "hwloc" / "32em64t-2n8c+dax+nvme+mic+dimms.tar.bz2"
    )
    if not archive.exists():
        print("no fixture", archive, "- skipping the 2-socket shots")
        return
    from ui_helpers import make_services, synthetic_sample, topology_of, with_gpu

    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(archive) as tf:
            tf.extractall(tmp, filter="tar")
        root = next(p for p in Path(tmp).iterdir() if p.is_dir())
        topo = with_gpu(topology_of(root))  # plus a constructed GPU on node 1
        for name, key in (("topology-2socket.svg", "t"), ("dashboard-2socket.svg", "d")):
            app = RigApp(make_services(topo, mode_detail=archive.name.split(".")[0]))

            async def steps(pilot, key=key, app=app) -> None:
                for i in range(60):
                    app.ingest_sample(synthetic_sample(topo, i))
                await pilot.press(key)
                await pilot.pause(0.3)

            await shoot(app, name, (120, 36), steps)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=3)
    asyncio.run(main(ap.parse_args().prompts))
