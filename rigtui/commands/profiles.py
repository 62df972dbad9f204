"""`rigtui profiles list|show|check|new`: launch profiles (TOML files, see profiles/*.toml)."""

from __future__ import annotations

import argparse
import contextlib
import sys

from rigtui.cli import EXIT_BAD_PROFILE, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, add_root_arg, make_fs


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "profiles", help="list, show, check and create launch profiles",
        description="Launch profiles are TOML files in ~/.config/rigtui/profiles (or "
        "$XDG_CONFIG_HOME/rigtui/profiles), then the examples shipped with rigtui. "
        "A profile is named by its file name: `rigtui run NAME` finds NAME.toml.",
    )  # fmt: skip
    sub = p.add_subparsers(dest="profiles_command", metavar="ACTION", required=True)
    ls = sub.add_parser("list", help="profiles by name, user ones first")
    ls.add_argument("--json", action="store_true")
    show = sub.add_parser("show", help="the profile file, its resolved values and launch plan")
    show.add_argument("profile", metavar="PROFILE", help="name or path")
    show.add_argument("--json", action="store_true", help="resolved profile + plan as JSON")
    add_root_arg(show)
    check = sub.add_parser("check", help="validate against this machine (exit 3 on errors)")
    check.add_argument(
        "profiles", metavar="PROFILE", nargs="*", help="names or paths (default: all)"
    )
    check.add_argument("--json", action="store_true")
    add_root_arg(check)
    new = sub.add_parser("new", help="write a documented profile suggested for this machine")
    new.add_argument("name", metavar="NAME")
    new.add_argument("--model", required=True, help='GGUF path, or "demo:300M"')
    new.add_argument("-t", "--threads", type=int)
    new.add_argument("--nodes", help="NUMA nodes to run on, e.g. 0 or 0,1")
    new.add_argument("--gpu-layers", type=int, dest="gpu_layers")
    new.add_argument("--stdout", action="store_true", help="print instead of writing the file")
    new.add_argument("--force", action="store_true", help="replace an existing user profile")
    add_root_arg(new)
    for sp in (ls, show, check, new):
        sp.set_defaults(func=run)


def _topology(args):
    from rigtui.probes import detect

    return detect(make_fs(args), nvml=None)


def run(args: argparse.Namespace) -> int:
    return {"list": _list, "show": _show, "check": _check, "new": _new}[args.profiles_command](args)


def _list(args: argparse.Namespace) -> int:
    import tomllib

    from rigtui.commands._common import print_json
    from rigtui.profiles import list_profiles
    from rigtui.profiles.store import read_profile_file

    rows = []
    for ref in list_profiles():
        problem = None
        try:
            data = tomllib.loads(read_profile_file(ref.path))
        except OSError as exc:
            data, problem = {}, f"cannot read: {exc.strerror or exc}"
        except UnicodeDecodeError:
            data, problem = {}, "cannot read: not UTF-8 text"
        except tomllib.TOMLDecodeError as exc:
            data, problem = {}, f"not valid TOML: {exc}"
        rows.append({"name": ref.name, "origin": ref.origin, "path": ref.path,
                     "description": data.get("description"), "model": data.get("model"),
                     "extends": data.get("extends"), "problem": problem})  # fmt: skip
    if args.json:
        print_json(rows)
        return EXIT_OK
    width = max((len(r["name"]) for r in rows), default=4)
    for r in rows:
        desc = r["problem"] or r["description"] or (f"extends {r['extends']}" if r["extends"] else "")
        print(f"{_printable(r['name']):<{width}}  {r['origin']:<7}  {_printable(str(desc))}")
    if not rows:
        print("no profiles; `rigtui profiles new NAME --model PATH` makes one")
    return EXIT_OK


def _printable(text: str, keep: str = "") -> str:
    """`text` with control characters (escape sequences from a profile's description, say)
    shown as \\xNN instead of reaching the terminal."""
    return "".join(ch if ch.isprintable() or ch in keep else f"\\x{ord(ch):02x}" for ch in text)


def _print_issues(issues) -> None:
    for issue in issues:
        print(str(issue), file=sys.stderr)


def _show(args: argparse.Namespace) -> int:

    from rigtui.commands._common import print_json
    from rigtui.profiles import ProfileError, find_profile, load_profile_with_warnings, plan_launch
    from rigtui.profiles.store import read_profile_file

    path = find_profile(args.profile)
    if path is None:
        print(
            f"rigtui profiles: no profile named {args.profile!r} (`rigtui profiles list`)",
            file=sys.stderr,
        )
        return EXIT_BAD_PROFILE
    topology = _topology(args)
    try:
        profile, warnings = load_profile_with_warnings(path, topology=topology)
    except ProfileError as exc:
        if not args.json:
            with contextlib.suppress(OSError, UnicodeDecodeError):
                sys.stdout.write(_printable(read_profile_file(path, "replace"), keep="\n\t"))
        _print_issues(exc.issues)
        return EXIT_BAD_PROFILE
    plan = plan_launch(profile, topology)
    if args.json:
        print_json({"profile": profile, "plan": plan, "warnings": warnings})
        return EXIT_OK
    print(f"# {path}")
    sys.stdout.write(_printable(read_profile_file(path), keep="\n\t"))
    print("\n# launch plan on this machine:")
    cpus = "inherited (all allowed CPUs)" if plan.cpus is None else ",".join(map(str, plan.cpus))
    print(f"#   cpus: {cpus}\n#   threads: {plan.threads} (batch {plan.batch_threads})")
    print(
        f"#   memory policy: {plan.memory_policy} {list(plan.memory_nodes) or ''}\n#   llama.cpp numa: {plan.numa}"
    )
    for note in plan.notes:
        print(f"#   - {note}")
    _print_issues(warnings)
    return EXIT_OK


def check_with_fit(name: str, topology) -> list:
    """`check_profile`, and for a profile with no errors whether its model and KV cache fit
    this machine's memory (analysis.profile_fit: that needs the model's shape)."""
    from rigtui.analysis.profile_fit import memory_fit_issues
    from rigtui.profiles import ProfileError, check_profile, find_profile, load_profile
    from rigtui.profiles.store import read_profile_file
    from rigtui.profiles.textutil import key_lines

    issues = list(check_profile(name, topology))
    if topology is None or any(i.severity == "error" for i in issues):
        return issues
    try:
        profile = load_profile(name, topology=topology)
        path = find_profile(name)
        line = key_lines(read_profile_file(path)).get("ctx") if path else None
    except (ProfileError, OSError, UnicodeDecodeError):
        return issues
    return issues + memory_fit_issues(profile, topology, str(path or name), line)


def _check(args: argparse.Namespace) -> int:
    from rigtui.commands._common import print_json
    from rigtui.profiles import list_profiles

    names = args.profiles or [r.path for r in list_profiles()]
    topology = _topology(args)
    results = {name: check_with_fit(name, topology) for name in names}
    if args.json:
        print_json([{"profile": n, "ok": not any(i.severity == "error" for i in issues), "issues": issues}
                    for n, issues in results.items()])  # fmt: skip
    else:
        for name, issues in results.items():
            errors = sum(i.severity == "error" for i in issues)
            print(
                f"{name}: {'FAIL' if errors else 'ok'}"
                + (f" ({len(issues)} issue(s))" if issues else "")
            )
            for issue in issues:
                print("  " + str(issue).replace("\n", "\n  "))
    bad = any(i.severity == "error" for issues in results.values() for i in issues)
    return EXIT_BAD_PROFILE if bad else EXIT_OK


def _new_text_ok(text: str, name: str, topology) -> bool:
    """Validate a new profile before it is written: values given on the command line that this
    machine rejects (threads 0, node 3 on a one-node box, ...) write nothing. A model file that
    is not there (yet) is only reported: the user may fetch it after writing the profile."""
    import tempfile
    from pathlib import Path

    from rigtui.profiles import check_profile

    with tempfile.TemporaryDirectory(prefix="rigtui-new-") as tmp:
        path = Path(tmp) / f"{name}.toml"
        path.write_text(text, encoding="utf-8")
        issues = check_profile(path, topology)
    blocking = [i for i in issues if i.severity == "error" and i.key != "model"]
    for issue in issues:
        shown = str(issue).replace(str(path), f"{name}.toml (new)")
        print(f"rigtui profiles new: {shown}", file=sys.stderr)
    if blocking:
        print("rigtui profiles new: nothing written; fix the options above", file=sys.stderr)
    return not blocking


def _new(args: argparse.Namespace) -> int:
    import re

    from rigtui.profiles import new_profile_text, save_profile_text, user_profile_dir

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", args.name or "") or args.name.endswith(
        ".toml"
    ):
        print(
            f"rigtui profiles new: bad name {args.name!r}: use letters, digits, '-' and '_'",
            file=sys.stderr,
        )
        return EXIT_USAGE
    overrides = {"threads": args.threads, "gpu_layers": args.gpu_layers}
    if args.nodes:
        try:
            overrides["nodes"] = [int(x) for x in args.nodes.split(",") if x.strip()]
        except ValueError:
            print(
                f"rigtui profiles new: --nodes {args.nodes!r}: a comma list of node ids",
                file=sys.stderr,
            )
            return EXIT_USAGE
    topology = _topology(args)
    model = args.model
    if not model.startswith("demo:"):  # the user means their current directory, not ours
        import os

        model = os.path.abspath(os.path.expanduser(model))
    text = new_profile_text(topology, args.name, model, **overrides)
    if not _new_text_ok(text, args.name, topology):
        return EXIT_BAD_PROFILE
    if args.stdout:
        sys.stdout.write(text)
        return EXIT_OK
    dest = user_profile_dir() / f"{args.name}.toml"
    if dest.exists() and not args.force:
        print(f"rigtui profiles new: {dest} exists (use --force to replace it)", file=sys.stderr)
        return EXIT_FAILURE
    save_profile_text(dest, text)
    print(f"wrote {dest}; check it with `rigtui profiles check {args.name}`")
    return EXIT_OK
