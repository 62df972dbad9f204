"""rigtui.analysis: sanity checks, the memory-bandwidth probe, GGUF facts and roofline planning.

Public API (import the submodules directly; this package imports nothing, to keep CLI start fast):
- `checks.run_checks(topology, ctx) -> list[Check]`, `checks.exit_code(checks)`, `checks.CHECK_IDS`
- `context.build_context(fs, model_path=..., engine_system_info=..., ...) -> CheckContext`
- `membench.run_membench(topology, ...) -> MemBenchResult`
- `membench_cache.load_cached_membench(topology)`, `membench_cache.save_membench(result)`
- `gguf_facts.read_gguf_facts(path) -> GgufFacts` (raises `GgufError`)
- `plan.make_plan(facts, topology, ...) -> Plan`, `plan.bytes_per_token(model_path, ctx)`
"""
