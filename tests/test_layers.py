"""The shape of the code (README "Design"): the engine imports no front and no endpoint library;
the endpoint library imports no front; a front (server, agent, gateway, cluster, demo) imports no
other front — they meet over the server's HTTP API. Only the command line (`vigil.cli`) names the
fronts, to register their commands and to start a cluster scan."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "vigil"
FRONTS = {"server", "agent", "gateway", "cluster", "demo", "cli"}
LIBRARIES = {"endpoint"}


def _imports(path: Path) -> set[str]:
    """Every vigil module a file imports, at any depth (lazy imports in functions too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return {m for m in found if m == "vigil" or m.startswith("vigil.")}


def _package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _files(src: Path) -> list[tuple[str, Path]]:
    return [
        (p.relative_to(src).parts[0] if len(p.relative_to(src).parts) > 1 else "", p)
        for p in sorted(src.rglob("*.py"))
    ]


def _violations(src: Path, allowed: dict[str, set[str]]) -> list[str]:
    bad = []
    for package, path in _files(src):
        if package == "cli":
            continue
        forbidden = (FRONTS | LIBRARIES) - allowed.get(package, set()) - {package}
        for module in sorted(_imports(path)):
            if _package(module) in forbidden:
                bad.append(f"{path.relative_to(src)} imports {module}")
    return bad


def test_the_layers_hold() -> None:
    # The engine (every package that is not a front or the endpoint library) may import neither;
    # the agent and the gateway share the endpoint library; nothing else crosses.
    endpoint_users = {"agent": {"endpoint"}, "gateway": {"endpoint"}}
    assert _violations(SRC, endpoint_users) == []


def test_the_check_sees_a_crossing(tmp_path: Path) -> None:
    """The check itself finds a front importing another, lazily inside a function."""
    fake = tmp_path / "vigil"
    (fake / "gateway").mkdir(parents=True)
    (fake / "gateway" / "x.py").write_text("def f():\n    from vigil.agent import daemon\n")
    (fake / "engine.py").write_text("import vigil.server.app\n")
    assert _violations(fake, {}) == [
        "engine.py imports vigil.server.app",
        "gateway/x.py imports vigil.agent",
        "gateway/x.py imports vigil.agent.daemon",
    ]
