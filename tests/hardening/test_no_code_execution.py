"""What a registry scanner looks for is absent from the package, and each subprocess is a known, fixed one.

The Comfy Registry bans packs whose scan finds code execution reachable from ``/prompt`` or a route
(issue 26). These tests read every module the package ships (its syntax tree, so a word in a
docstring or a message does not count and ``module.eval()`` - torch's eval mode - is not ``eval``):
no ``eval``/``exec``/``compile``/``__import__``, no pickle-family import, no ``shell=True``, no
``os.system``/``os.popen``, ``torch.load`` only with ``weights_only=True``, and subprocesses only where
docs/security.md explains them, with argv no widget can shape.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACK = Path(__file__).resolve().parents[2]
SHIPPED = ("__init__.py", "__main__.py", "install.py", "cli", "comfy_tools", "core", "nodes", "trainers")
#: The only modules that start processes, and why (docs/security.md, "Subprocesses").
SUBPROCESS_MODULES = {
    "core/training/launcher.py": "the trainer: this interpreter, a fixed bootstrap, a family name, a config path",
    "core/vision/body_pose.py": "the pose worker: FLENWHEEL_POSE_PYTHON (or the CLI's --pose-python), a fixed script",
    "install.py": "ComfyUI-Manager's install hook: pip with fixed package names",
}
BANNED_CALLS = {"eval", "exec", "compile", "__import__", "breakpoint"}
BANNED_MODULES = {"pickle", "cPickle", "dill", "cloudpickle", "marshal", "shelve", "joblib"}


def shipped_modules() -> list[Path]:
    files = []
    for entry in SHIPPED:
        path = PACK / entry
        files += [path] if path.is_file() else sorted(path.rglob("*.py"))
    return files


def trees() -> list[tuple[str, ast.AST]]:
    return [(path.relative_to(PACK).as_posix(), ast.parse(path.read_text(encoding="utf-8"))) for path in
            shipped_modules()]


def test_the_scan_reads_the_whole_package():
    names = {name for name, _ in trees()}
    assert {"core/graph/save.py", "nodes/_places.py", "trainers/config.py", "cli/items_cmd.py"} <= names
    assert len(names) > 150


def test_no_eval_exec_or_pickle_anywhere():
    found = []
    for name, tree in trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in BANNED_CALLS:
                found.append(f"{name}:{node.lineno} {node.func.id}()")
            if isinstance(node, ast.Import):
                found += [f"{name}:{node.lineno} import {a.name}" for a in node.names
                          if a.name.split(".")[0] in BANNED_MODULES]
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in BANNED_MODULES:
                found.append(f"{name}:{node.lineno} from {node.module} import")
    assert found == []


def test_no_shell_and_no_os_system():
    found = []
    for name, tree in trees():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            if any(k.arg == "shell" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
                   for k in node.keywords):
                found.append(f"{name}:{node.lineno} shell=")
            func = node.func
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "os" and \
                    func.attr in {"system", "popen", "execv", "execve", "execvp", "spawnl", "spawnv"}:
                found.append(f"{name}:{node.lineno} os.{func.attr}")
    assert found == []


def test_torch_load_only_reads_tensors():
    found = []
    for name, tree in trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load" \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch":
                safe = any(k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                           for k in node.keywords)
                if not safe:
                    found.append(f"{name}:{node.lineno}")
    assert found == []


def test_subprocesses_start_only_in_the_modules_security_md_explains():
    starting = set()
    for name, tree in trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Import) and any(a.name == "subprocess" for a in node.names):
                starting.add(name)
            if isinstance(node, ast.ImportFrom) and node.module in {"subprocess", "multiprocessing", "pty"}:
                starting.add(name)
    assert starting == set(SUBPROCESS_MODULES)
    security = (PACK / "docs" / "security.md").read_text(encoding="utf-8")
    assert all(module in security for module in SUBPROCESS_MODULES)


def test_the_trainer_argv_holds_no_widget_text(tmp_path):
    from flenwheel.core.data.errors import FlenwheelError
    from flenwheel.core.training.launcher import PACKAGE_ROOT, trainer_command

    config = tmp_path / "config.yaml"
    argv = trainer_command("flux", config)
    assert argv[0] == sys.executable and argv[1] == "-c" and argv[3:] == [str(PACKAGE_ROOT), "flux", "--config",
                                                                          str(config)]
    for hostile in ["flux; rm -rf ~", "--help", "../x"]:
        with pytest.raises(FlenwheelError):
            trainer_command(hostile, config)
