"""The docs' commands against the real CLI: every ``softq train/eval/compare/reproduce/irl`` line
in README.md and docs/*.md parses with ``softq``'s argument parser, every preset it names exists
and every ``--set`` resolves against that preset's config (or every run of a ``reproduce`` plan),
as ``softq train`` would resolve it, without training anything. Placeholders (``...``, ``X``) are
skipped."""

from __future__ import annotations

import itertools
import re
import shlex
from pathlib import Path

from launch.cli import build_parser
from launch.config import load_config, preset_names
from launch.experiments import build_plan, parse_seeds
from launch.reproduce_cmd import overrides_by_run, planned_config

ROOT = Path(__file__).resolve().parent.parent
DOCS = ["README.md", "docs/experiments.md", "docs/irl.md", "docs/tasks.md"]
PLACEHOLDERS = {"...", "/", "X", "NAME", "LABEL", "EXPERIMENT..."}
CHECKED = {"train", "eval", "compare", "reproduce", "irl"}  # bench: its options need the device


def doc_commands(text: str) -> list[str]:
    """``softq ...`` lines of fenced and 4-space-indented blocks, and inline `softq ...` spans."""
    text = re.sub(r"\\\n\s*", " ", text)  # join continued lines
    found = []
    for line in text.splitlines():
        code = line.split(" #")[0].strip()
        for part in re.split(r"&&|;", code):
            part = part.strip()
            if part.startswith("softq ") and (line.startswith("    ") or "`" not in line):
                found.append(part)
    found += re.findall(r"`(softq [^`]*)`", text.replace("\n", " "))
    return found


def all_commands() -> list[tuple[str, list[str]]]:
    out = []
    for name in DOCS:
        for cmd in doc_commands((ROOT / name).read_text()):
            argv = shlex.split(cmd.replace("$v", "a2c-naive"))[1:]
            flag_alone = len(argv) == 2 and argv[1].startswith("--")  # `softq compare --mode`
            if len(argv) >= 2 and argv[0] in CHECKED and not flag_alone \
                    and not PLACEHOLDERS & set(argv) and not any("[" in a for a in argv):
                out.append((name, argv))
    return out


COMMANDS = all_commands()


def test_the_docs_hold_commands_of_every_kind():
    kinds = {argv[0] for _, argv in COMMANDS}
    assert kinds == CHECKED, kinds  # the extraction above still finds them


def test_every_doc_command_parses_and_its_presets_and_overrides_resolve():
    bad = []
    for doc, argv in COMMANDS:
        try:
            args = build_parser().parse_args(argv)
            if args.command == "train" and args.preset:
                seed = [] if args.seed is None else [f"run.seed={args.seed}"]
                load_config(args.preset, [*args.overrides, *seed])
            elif args.command == "reproduce":
                games = args.games.split(",") if args.games else None
                plan = build_plan(args.experiments, args.quick, parse_seeds(args.seeds), games,
                                  args.overrides)
                per_run = overrides_by_run(plan, args.overrides, args.set_for)
                for run in plan.runs:
                    planned_config(run, per_run[run.name])
        except (SystemExit, Exception) as exc:  # noqa: BLE001 - report every stale line at once
            bad.append(f"{doc}: softq {shlex.join(argv)} -> {exc!r}")
    assert not bad, "\n".join(bad)


def _expand_braces(text: str) -> list[str]:
    parts = re.split(r"\{([^{}]*)\}", text)
    options = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(c) for c in itertools.product(*options)]


def test_every_preset_named_in_backticks_exists():
    presets = set(preset_names())
    families = {name.split("-")[0] for name in presets}
    missing = []
    for doc in DOCS:
        for span in re.findall(r"`([^`\n]+)`", (ROOT / doc).read_text()):
            if "/" in span or "*" in span or "<" in span:
                continue  # paths, globs, templates
            for word in span.split():
                for name in _expand_braces(word):
                    if re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", name) and \
                            name.split("-")[0] in families and name not in presets:
                        missing.append(f"{doc}: {name} (in `{span}`)")
    assert not missing, "\n".join(missing)
