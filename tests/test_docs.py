"""The documentation keeps up with the code: every public module of mlip is in the API
reference, every benchmark script has its page, and README's links and commands hold.

(The strict MkDocs build, which checks links and API names inside the site, runs in CI
with the ``docs`` extra: ``mkdocs build --strict``.)
"""

from __future__ import annotations

import os
import re
import subprocess

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
#: scripts of benchmarks/ that are helpers of the others, not benchmarks with a page
HELPERS = {
    "common",
    "md_common",
    "epoch_timing",
    "mace_baseline",
    "mace_side",
    "crystal_properties",  # materials.py's property functions
    "make_materials_data",  # makes the data materials.py tests on
    "learn_molecules",  # makes the molecules active_learning.py and learn_first_round.py use
}


def public_modules() -> list[str]:
    names = []
    for folder, _, files in os.walk(os.path.join(ROOT, "mlip")):
        for name in files:
            if not name.endswith(".py"):
                continue
            parts = os.path.relpath(os.path.join(folder, name), ROOT)[:-3].split(os.sep)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if any(p.startswith("_") for p in parts):  # private, __main__
                continue
            names.append(".".join(parts))
    return sorted(names)


def api_entries() -> set[str]:
    entries = set()
    for name in os.listdir(os.path.join(DOCS, "api")):
        with open(os.path.join(DOCS, "api", name)) as handle:
            entries |= set(re.findall(r"^::: ([\w.]+)\s*$", handle.read(), re.MULTILINE))
    return entries


def test_every_public_module_is_in_the_api_reference():
    missing = sorted(set(public_modules()) - api_entries())
    assert not missing, f"add to docs/api/*.md: {missing}"


def test_every_benchmark_script_has_a_page_that_gives_its_command():
    scripts = [
        name
        for name in os.listdir(os.path.join(ROOT, "benchmarks"))
        if name.endswith((".py", ".sh")) and os.path.splitext(name)[0] not in HELPERS
    ]
    assert len(scripts) >= 10
    for script in scripts:
        page = os.path.join(DOCS, "benchmarks", os.path.splitext(script)[0] + ".md")
        assert os.path.exists(page), f"benchmarks/{script} has no page {page}"
        with open(page) as handle:
            assert f"benchmarks/{script}" in handle.read(), f"{page} does not give its command"


def test_every_page_is_in_the_navigation():
    with open(os.path.join(ROOT, "mkdocs.yml")) as handle:
        config = yaml.safe_load(handle)

    def pages(node) -> list[str]:
        if isinstance(node, str):
            return [node]
        if isinstance(node, list):
            return [p for item in node for p in pages(item)]
        return [p for value in node.values() for p in pages(value)]

    listed = set(pages(config["nav"]))
    present = {
        os.path.relpath(os.path.join(folder, name), DOCS)
        for folder, _, files in os.walk(DOCS)
        for name in files
        if name.endswith(".md")
    }
    assert present == listed


def test_readme_is_a_front_page_whose_links_exist():
    with open(os.path.join(ROOT, "README.md")) as handle:
        text = handle.read()
    assert len(text.splitlines()) <= 250
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" not in target:
            assert os.path.exists(os.path.join(ROOT, target)), f"README links to {target}"


def test_ci_reads_the_test_command_from_readme():
    """.ci/run runs README's second code block: it must install the test extra and run
    pytest (the same awk line as .ci/run)."""
    with open(os.path.join(ROOT, ".ci", "run")) as handle:
        awk = re.search(r"awk '([^']+)' README.md", handle.read()).group(1)
    command = subprocess.run(
        ["awk", awk, "README.md"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert '".[test]"' in command and "pytest" in command
