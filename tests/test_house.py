"""The house: no import circles between the package's modules, and the Protocols that broke the last ones
(`avatar_interface.Animatable`, `training.learner.Learner`) still declare every member their users touch.

Module-level imports count, those under ``if TYPE_CHECKING:`` included (a circle there is still two modules that
each need the other); imports inside functions do not (that is how optional parts load lazily). Read from the
source with `ast`, so nothing is imported and the check takes milliseconds.
"""

from __future__ import annotations

import ast
from pathlib import Path

from talkinghead.avatar_interface import Animatable
from talkinghead.training.learner import Learner

SOURCE = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SOURCE / "talkinghead"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _module_level_imports(tree: ast.Module, modules: set[str]) -> set[str]:
    """The package's modules imported outside functions (``from a import b`` counts a.b when b is a module)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                found.add(child.module)
                found.update(f"{child.module}.{alias.name}" for alias in child.names)
            visit(child)

    visit(tree)
    return found & modules


def import_graph() -> dict[str, set[str]]:
    paths = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    modules = set(paths)
    return {name: _module_level_imports(ast.parse(path.read_text()), modules) - {name}
            for name, path in paths.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as [a, b, ..., a], or None (depth-first search, three colours)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for imported in sorted(graph[module]):
            if state.get(imported) == 1:
                return path[path.index(imported):] + [imported]
            if imported not in state and (cycle := visit(imported)):
                return cycle
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def test_the_package_has_no_import_circle():
    graph = import_graph()
    assert len(graph) > 100 and "talkinghead.animation" in graph["talkinghead.inference"]  # the scan sees imports
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_finder_finds_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def _used_members(path: Path, names: set[str]) -> set[str]:
    """Attributes read on ``name`` or ``self.name`` for each name in ``names`` (e.g. ``avatar.box``)."""
    used = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Attribute):
            continue
        owner = node.value
        if isinstance(owner, ast.Attribute) and isinstance(owner.value, ast.Name) and owner.value.id == "self":
            owner_name = owner.attr
        elif isinstance(owner, ast.Name):
            owner_name = owner.id
        else:
            continue
        if owner_name in names:
            used.add(node.attr)
    return used


def _class_members(path: Path, class_name: str) -> set[str]:
    """A class's methods and the attributes its methods set on ``self``."""
    tree = ast.parse(path.read_text())
    (cls,) = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == class_name]
    members = {node.name for node in cls.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    for node in ast.walk(cls):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign) else []
        members.update(t.attr for t in targets if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name)
                       and t.value.id == "self")
    return members


def _declared(protocol: type) -> set[str]:
    return set(protocol.__annotations__) | {name for name, value in vars(protocol).items()
                                            if callable(value) and not name.startswith("__")}


def test_the_animation_loop_uses_only_what_animatable_declares_and_avatar_has():
    used = _used_members(PACKAGE / "animation.py", {"avatar"})
    assert {"landmark_image", "_generate", "source_landmarks"} <= used  # the scan sees the loop's calls
    assert used <= _declared(Animatable), sorted(used - _declared(Animatable))
    avatar = _class_members(PACKAGE / "inference.py", "Avatar")
    assert _declared(Animatable) <= avatar, sorted(_declared(Animatable) - avatar)


def test_training_reporting_and_state_use_only_what_learner_declares_and_metalearner_has():
    used = _used_members(PACKAGE / "training" / "reporting.py", {"learner"}) | _used_members(
        PACKAGE / "training" / "state.py", {"learner"})
    assert {"ema", "export_tensors", "load_state"} <= used
    assert used <= _declared(Learner), sorted(used - _declared(Learner))
    learner = _class_members(PACKAGE / "training" / "loop.py", "MetaLearner")
    assert _declared(Learner) <= learner, sorted(_declared(Learner) - learner)
