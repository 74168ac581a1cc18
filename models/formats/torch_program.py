"""Checks a serialized ``torch.export`` program before torch's deserializer ever sees it.

Why this exists: ``torch.export.load`` unpickles (its sample inputs, pickled weights, opaque
constants), and its documentation says to never load a file from an untrusted source. Storing
the weights in safetensors removes the pickles, but the program's JSON is not inert either:

* ``guards_code`` is Python source that ``ExportedProgram.module()`` runs with ``exec``;
* each symbolic shape expression (``expr_str``) goes through ``sympy.sympify``, an ``eval``;
* parameter and buffer names are pasted unescaped into the Python code FX generates;
* placeholder string values become guard code.

So a program is only handed to torch after this module has checked it against allowlists:
targets are aten operators (but ``aten.from_file``, which reads any local file) or the handful
of Python builtins torch's verifier accepts; shape expressions parse into a small grammar of
sympy calls on shape symbols and numbers; names and keys are dotted identifiers; no guard code,
no subgraphs (higher-order ops), no custom objects, and a schema major version this torch
reads. Free text torch does not need to run the program (stack traces, module stacks) is
stripped. What is refused is named, so a user can see why their program did not pass.

These checks are a defence in depth around a large deserializer, pinned to the torch version
the project pins (the schema major version is checked); they use torch's private serializer,
as ``torch.export.save`` and ``load`` themselves do.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

import torch

__all__ = ["UnsafeProgramError", "deserialize_program", "parameter_names", "sanitize_program"]

SUPPORTED_SCHEMA_MAJOR = 8  # torch._export.serde.schema.SCHEMA_VERSION[0] of the pinned torch

_TOKEN = re.compile(r"^[A-Za-z0-9_.]*$")  # dotted identifiers: net.0.weight, torch.ops.aten.x
_SYMBOL = re.compile(r"^[a-z]{1,4}[0-9]+$")  # shape symbols torch creates: s0, s77, u3
_NUMBER = re.compile(r"^-?[0-9]+(\.[0-9]*)?(e-?[0-9]+)?$")
_SYMPY_NAMES = frozenset(
    {
        # torch.utils._sympy.functions, as torch's deserializer registers them
        "FloorDiv", "ModularIndexing", "Where", "PythonMod", "Mod", "CleanDiv", "CeilToInt",
        "FloorToInt", "CeilDiv", "LShift", "RShift", "PowByNatural", "FloatPow", "FloatTrueDiv",
        "IntTrueDiv", "IsNonOverlappingAndDenseIndicator", "TruncToFloat", "TruncToInt",
        "RoundToInt", "RoundDecimal", "ToFloat", "Identity",
        # sympy, as sympy.srepr writes expressions
        "Max", "Min", "Abs", "Eq", "Ne", "Lt", "Le", "Gt", "Ge", "And", "Or", "Not", "floor",
        "ceiling", "sqrt", "oo", "zoo", "nan", "True", "False", "Symbol", "Integer", "Float",
        "Rational", "Add", "Mul", "Pow", "Half", "One", "Zero", "NegativeOne", "Infinity",
        "NegativeInfinity", "StrictLessThan", "LessThan", "StrictGreaterThan", "GreaterThan",
        "Equality", "Unequality", "BooleanTrue", "BooleanFalse",
    }
)  # fmt: skip
_SYMPY_KEYWORDS = frozenset(
    {"positive", "negative", "nonnegative", "nonpositive", "integer", "real", "finite", "nonzero",
     "precision"}
)  # fmt: skip
_SYMPY_NODES = (
    ast.Expression, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.Call, ast.Name,
    ast.Constant, ast.Load, ast.keyword, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv,
    ast.Mod, ast.Pow, ast.USub, ast.UAdd, ast.Not, ast.And, ast.Or, ast.BitAnd, ast.BitOr,
    ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE,
)  # fmt: skip
_TREESPEC_TYPES = frozenset(
    {None, "builtins.tuple", "builtins.list", "builtins.dict", "collections.OrderedDict",
     "collections.defaultdict"}
)  # fmt: skip
# The builtins torch's verifier accepts in a graph, by their serialized names.
_OPERATORS = (
    "getitem", "add", "mul", "sub", "truediv", "ge", "le", "gt", "lt", "eq", "ne", "floordiv",
    "mod", "and_", "or_", "not_", "pow", "neg", "abs", "lshift", "rshift",
)  # fmt: skip
_BUILTIN_TARGETS = frozenset(
    {f"_operator.{name}" for name in _OPERATORS} | {"math.ceil", "math.floor", "math.trunc"}
)
# aten operators with effects beyond their tensors: from_file reads any local file.
_DENIED_ATEN = frozenset({"from_file"})
_REFUSED_KEYS = frozenset(
    {"as_graph", "as_custom_obj", "as_custom_objs", "custom_obj", "as_opaque_obj"}
)


class UnsafeProgramError(ValueError):
    """The program uses something this loader refuses; the message says what and where."""


def _refuse(path: str, why: str) -> UnsafeProgramError:
    return UnsafeProgramError(f"{path}: {why}")


def _check_expression(expression: str, path: str) -> None:
    """``expr_str`` is sympy.srepr output fed to sympify (an eval): only calls of known sympy and
    torch-sympy classes on shape symbols and numbers pass."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError:
        raise _refuse(path, f"unparsable shape expression {expression!r}") from None
    allowed_strings: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            for argument in node.args:
                if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                    symbol = node.func.id == "Symbol" and _SYMBOL.match(argument.value)
                    number = node.func.id in ("Integer", "Float", "Rational") and _NUMBER.match(
                        argument.value
                    )
                    if symbol or number:
                        allowed_strings.add(id(argument))
    for node in ast.walk(tree):
        if not isinstance(node, _SYMPY_NODES):
            raise _refuse(path, f"{type(node).__name__} in {expression!r}")
        if isinstance(node, ast.Constant) and not (
            type(node.value) in (int, float, bool) or id(node) in allowed_strings
        ):
            raise _refuse(path, f"constant {node.value!r} in {expression!r}")
        if isinstance(node, ast.Name) and not (node.id in _SYMPY_NAMES or _SYMBOL.match(node.id)):
            raise _refuse(path, f"name {node.id!r} in {expression!r}")
        if isinstance(node, ast.Call) and not isinstance(node.func, ast.Name):
            raise _refuse(path, f"call form in {expression!r}")
        if isinstance(node, ast.keyword) and not (
            node.arg in _SYMPY_KEYWORDS
            and isinstance(node.value, ast.Constant)
            and type(node.value.value) in (bool, int)
        ):
            raise _refuse(path, f"keyword {node.arg!r} in {expression!r}")


def _check_treespec(spec: str, path: str) -> None:
    def walk(node: Any, where: str) -> None:
        if node["type"] not in _TREESPEC_TYPES:
            raise _refuse(where, f"pytree type {node['type']!r}")
        context = node["context"]
        keys = (json.loads(context) or []) if context is not None else []
        for key in keys:
            if not (isinstance(key, int) or (isinstance(key, str) and _TOKEN.match(key))):
                raise _refuse(where, f"pytree key {key!r}")
        for index, child in enumerate(node["children_spec"]):
            walk(child, f"{where}.children_spec[{index}]")

    version, root = json.loads(spec)
    if version != 1:
        raise _refuse(path, f"treespec version {version}")
    walk(root, path)


def _check_target(target: str, path: str) -> None:
    if target in _BUILTIN_TARGETS:
        return
    parts = target.split(".")
    if len(parts) == 5 and parts[:3] == ["torch", "ops", "aten"] and parts[3] not in _DENIED_ATEN:
        overload = getattr(getattr(torch.ops.aten, parts[3], None), parts[4], None)
        if isinstance(overload, torch._ops.OpOverload):
            return
    raise _refuse(path, f"operator {target!r} is not an aten operator or a plain builtin")


def _walk_field(key: str, item: Any, where: str, node_inputs: bool) -> None:
    if key == "expr_str":
        _check_expression(item, where)
    elif key in ("in_spec", "out_spec") and item is not None:
        _check_treespec(item, where)
    elif key in ("as_string", "as_strings") and node_inputs:
        # An operator's string arguments (an einsum equation) are written with repr() by FX, so
        # any text is safe there.
        items = item if isinstance(item, list) else [item]
        if not all(isinstance(text, str) for text in items):
            raise _refuse(where, "a string argument that is not a string")
    elif key == "as_operator":
        _check_target(item, where)
    elif key in _REFUSED_KEYS:
        raise _refuse(where, "subgraphs and custom (ScriptObject) objects are not loaded")
    else:
        _walk(item, where, node_inputs)


def _walk(value: Any, path: str, node_inputs: bool) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}"
            if not isinstance(key, str) or not _TOKEN.match(key):
                raise _refuse(where, f"key {key!r}")
            _walk_field(key, item, where, node_inputs)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, f"{path}[{index}]", node_inputs)
    elif isinstance(value, str):
        if not _TOKEN.match(value):
            raise _refuse(path, f"string {value!r}")
    elif not (value is None or isinstance(value, bool | int | float)):
        raise _refuse(path, f"a JSON value of type {type(value).__name__}")


def sanitize_program(program: bytes | str) -> bytes:
    """A checked copy of a serialized program's JSON, stripped of free text; raises
    `UnsafeProgramError` naming what it refuses."""
    document = json.loads(program)
    if not isinstance(document, dict) or "graph_module" not in document:
        raise _refuse("$", "not a serialized ExportedProgram")
    major = document.get("schema_version", {}).get("major")
    if major != SUPPORTED_SCHEMA_MAJOR:
        raise _refuse(
            "$.schema_version", f"major {major}; this torch reads {SUPPORTED_SCHEMA_MAJOR}"
        )
    if document.get("guards_code"):
        raise _refuse("$.guards_code", "guard code is Python that ExportedProgram.module() runs")
    document.pop("torch_version", None)
    for verifier in document.get("verifiers", []):
        if verifier not in ("ATEN", "TRAINING", ""):
            raise _refuse("$.verifiers", f"dialect {verifier!r}")
    graph_module = document["graph_module"]
    graph_module["metadata"] = {}
    graph = graph_module["graph"]
    if graph.get("custom_obj_values"):
        raise _refuse("$.graph_module.graph.custom_obj_values", "ScriptObject values")
    for index, node in enumerate(graph["nodes"]):
        node["metadata"] = {}  # stack traces, module stacks: free text, not needed to run
        _check_target(node["target"], f"$.nodes[{index}].target")
        _walk(node["inputs"], f"$.nodes[{index}].inputs", node_inputs=True)
        _walk({k: v for k, v in node.items() if k != "inputs"}, f"$.nodes[{index}]", False)
    _walk({k: v for k, v in graph.items() if k != "nodes"}, "$.graph", False)
    _walk({k: v for k, v in graph_module.items() if k != "graph"}, "$.graph_module", False)
    _walk({k: v for k, v in document.items() if k != "graph_module"}, "$", False)
    return json.dumps(document).encode()


def parameter_names(program: bytes) -> set[str]:
    """The names the program's signature declares as parameters (they must be nn.Parameter)."""
    signature = json.loads(program)["graph_module"]["signature"]
    return {
        spec["parameter"]["parameter_name"]
        for spec in signature["input_specs"]
        if "parameter" in spec
    }


def deserialize_program(
    program: bytes, state_dict: dict[str, torch.Tensor], constants: dict[str, torch.Tensor]
) -> torch.export.ExportedProgram:
    """A checked program with its tensors, through torch's own deserializer and no pickle: a
    dict of tensors is taken as it is, and empty example inputs are skipped."""
    from torch._export.serde.serialize import SerializedArtifact, deserialize

    for name, tensor in {**state_dict, **constants}.items():
        if type(tensor) not in (torch.Tensor, torch.nn.Parameter):
            raise UnsafeProgramError(f"{name}: {type(tensor).__name__} is not a plain tensor")
    return deserialize(
        SerializedArtifact(
            exported_program=program,
            state_dict=state_dict,  # type: ignore[arg-type]
            constants=constants,  # type: ignore[arg-type]
            example_inputs=b"",
        )
    )
