"""Read a learner's notebook without running it: which lesson, what it tried on the checker, what it claims.

Nothing here executes the notebook's code: cells are parsed (``ast``) and looked at.
What counts as *trying the checker* (each reported with its cell, never graded on):

* changing a question or the ``exercises`` package: ``q1.check = ...``, ``setattr(q1, ...)``,
  ``del q1.reference``, assignments into ``exercises.core`` …;
* importing the checker's insides (``exercises.core``, ``exercises.sandbox``, ``exercises.grading``),
  or ``sys.modules`` / ``importlib.reload`` games;
* reading the answer: ``q2.solution()``, ``q2.reference``, ``q2.solution_fn``, ``q2.mistakes`` …

What it *claims*: the saved output of each ``qN.check(...)`` cell (a ✔ line), compared later with
the grade its functions earn — a mismatch means outputs edited by hand (or stale).

Example:
    >>> cells = ["from exercises.ex01_affine import q1, q2", "q1.check = lambda *a: None", "q2.solution()"]
    >>> found = scan_sources(cells)
    >>> found.lessons, [f"cell {c}: {what}" for c, what in found.findings]
    (['exercises.ex01_affine'], ['cell 2: redefines q1.check', 'cell 3: shows the solution of q2 (q2.solution())'])
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

LESSON_MODULE = re.compile(r"^exercises\.ex\d\d_\w+$")
INSIDES = ("exercises.core", "exercises.sandbox", "exercises.compare", "exercises.grading", "exercises.tracking")
ANSWER_ATTRS = {"reference": "reads the reference of {q} ({q}.reference)",
                "solution_fn": "reads the solution of {q} ({q}.solution_fn)",
                "mistakes": "reads the known mistakes of {q} ({q}.mistakes)",
                "alternatives": "reads the accepted answers of {q} ({q}.alternatives)",
                "cases": "reads the test cases of {q} ({q}.cases)"}
CHECKED = re.compile(r"\b(\w+)\.check\(")


@dataclass
class Scan:
    """What a notebook's source shows: lesson modules, questions imported, findings, claimed results."""

    lessons: list[str] = field(default_factory=list)
    questions: dict[str, str] = field(default_factory=dict)  # local name -> question name (q1 as a -> a: q1)
    findings: list[tuple[int, str]] = field(default_factory=list)  # (1-based code cell, what it tried)
    claims: dict[str, bool] = field(default_factory=dict)  # question -> its saved output says correct


def _python(source: str) -> str:
    """A cell's source without IPython's magics and shell lines (they are not Python)."""
    return "\n".join("" if line.lstrip().startswith(("%", "!", "?")) else line for line in source.splitlines())


def _root(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


class _Visitor(ast.NodeVisitor):
    def __init__(self, scan: Scan, cell: int, kit_names: set[str]):
        self.scan, self.cell, self.kit = scan, cell, kit_names

    def note(self, what: str) -> None:
        if (self.cell, what) not in self.scan.findings:
            self.scan.findings.append((self.cell, what))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        mod = node.module or ""
        if LESSON_MODULE.match(mod):
            if mod not in self.scan.lessons:
                self.scan.lessons.append(mod)
            for a in node.names:
                if re.fullmatch(r"q\d+", a.name):
                    self.scan.questions[a.asname or a.name] = a.name
                self.kit.add(a.asname or a.name)
        elif mod == "exercises" or mod.startswith("exercises."):
            self.kit.update(a.asname or a.name for a in node.names)
            if mod.startswith(INSIDES) or any(f"{mod}.{a.name}".startswith(INSIDES) for a in node.names):
                self.note(f"imports the checker's insides (from {mod} import ...)")
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            if LESSON_MODULE.match(a.name) and a.name not in self.scan.lessons:
                self.scan.lessons.append(a.name)
            if a.name == "exercises" or a.name.startswith("exercises."):
                self.kit.add((a.asname or a.name).split(".")[0])
                if a.name.startswith(INSIDES):
                    self.note(f"imports the checker's insides ({a.name})")
        self.generic_visit(node)

    def _target(self, target: ast.AST, verb: str) -> None:
        if isinstance(target, (ast.Tuple, ast.List)):
            for t in target.elts:
                self._target(t, verb)
        elif isinstance(target, (ast.Attribute, ast.Subscript)) and _root(target) in self.kit | {"sys"}:
            name = _dotted(target) if isinstance(target, ast.Attribute) else _dotted(target.value) + "[...]"
            if not name.startswith("sys.") or name.startswith(("sys.modules", "sys.meta_path", "sys.path_hooks")):
                self.note(f"{verb} {name}")

    def visit_Assign(self, node: ast.Assign) -> None:
        for t in node.targets:
            self._target(t, "redefines")
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._target(node.target, "redefines")
        self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> None:
        for t in node.targets:
            self._target(t, "deletes")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        f = node.func
        fname = _dotted(f)
        if fname in ("setattr", "delattr", "object.__setattr__") and node.args and _root(node.args[0]) in self.kit:
            self.note(f"changes {_dotted(node.args[0])} with {fname}()")
        if fname in ("importlib.reload", "reload") and node.args and _root(node.args[0]) in self.kit:
            self.note(f"reloads {_dotted(node.args[0])}")
        if isinstance(f, ast.Attribute) and f.attr == "solution" and _root(f) in self.scan.questions:
            q = _dotted(f.value)
            self.note(f"shows the solution of {q} ({q}.solution())")
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr in ANSWER_ATTRS and isinstance(node.value, ast.Name) and node.value.id in self.scan.questions:
            self.note(ANSWER_ATTRS[node.attr].format(q=node.value.id))
        if node.attr in ("__dict__", "__code__", "__globals__") and _root(node) in self.kit:
            self.note(f"reaches into {_dotted(node)}")
        self.generic_visit(node)


def scan_sources(cells: list[str], outputs: list[str] | None = None) -> Scan:
    """Scan code cells' sources (and, if given, each cell's saved output text)."""
    scan, kit_names = Scan(), {"exercises"}
    for i, source in enumerate(cells, start=1):
        try:
            tree = ast.parse(_python(source))
        except SyntaxError:
            continue
        _Visitor(scan, i, kit_names).visit(tree)
        kit_names.update(scan.questions)
        if outputs is not None:
            for q in CHECKED.findall(source):
                if q not in scan.questions:
                    continue
                name = scan.questions[q]
                scan.claims[name] = scan.claims.get(name, False) or "✔ correct" in outputs[i - 1]
    return scan


def output_text(cell: dict) -> str:
    """The text a code cell's saved outputs show (stream text, plain and HTML reprs)."""
    parts = []
    for out in cell.get("outputs", []):
        if "text" in out:
            parts.append("".join(out["text"]) if isinstance(out["text"], list) else str(out["text"]))
        for key in ("text/plain", "text/html"):
            v = out.get("data", {}).get(key)
            if v:
                parts.append("".join(v) if isinstance(v, list) else str(v))
    return "\n".join(parts)


def scan_notebook(nb: dict) -> Scan:
    """:func:`scan_sources` over a notebook's code cells (an ``nbformat`` node or plain dict)."""
    code = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    sources = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in code]
    return scan_sources(sources, [output_text(c) for c in code])
