"""Sandboxed Jinja2 templates over item fields (prompts and http-json request bodies).

The sandbox blocks attribute escapes such as ``{{ ''.__class__.__mro__ }}``;
``StrictUndefined`` turns a missing field into an error instead of an empty string.

Rendering is bounded (``TemplateLimits``, set by the ``templates`` config section; see
docs/configuration.md): a template that does too much work, or builds a value or an output
over the size limit, fails with a ValueError naming the limit instead of hanging the process
or filling its memory. Jinja's own sandbox caps ``range`` but not, say, two nested loops of
100,000 iterations, ``'x' * 10**9``, or a string doubled in a loop. So:

- **work** is counted in operations against ``max_operations``: every loop iteration (plus
  one per 256 characters of the loop body's text), call, filter, test, attribute or item
  access, operator and output value costs one (a macro call 25), plus one per 256
  characters (or 8 elements) of the values it takes and makes;
- **size**: no value a template takes or makes may exceed ``max_output`` characters (a
  container counts its elements, expanded: a list holding the same list twice counts it
  twice), and neither may the output. The operations that could allocate far more than
  their inputs (``*``, ``**``, ``%``, ``~``, ``+``, ``format``, ``join``, ``replace``,
  ``indent``, ``wordwrap``, ``center`` and any integer argument) are checked *before* they
  run, so an over-limit value is never built.

The template is instrumented when it is parsed (loops, ``~`` and comparisons are rewritten
into counting filters), and the counts are per render: the same template over the same item
always succeeds or fails the same way, whatever the machine's load.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

from jinja2 import StrictUndefined, TemplateError, Undefined, meta, nodes
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, safe_range
from jinja2.utils import Namespace, _PassArg, pass_context
from jinja2.visitor import NodeTransformer

__all__ = ["DEFAULT_LIMITS", "Template", "TemplateLimitError", "TemplateLimits"]


@dataclass(frozen=True, slots=True)
class TemplateLimits:
    """Caps on one rendering (defaults: docs/configuration.md, section ``templates``)."""

    max_output: int = 1_000_000  # characters of the output and of any value built on the way
    max_operations: int = 100_000  # work units, see the module docstring


DEFAULT_LIMITS = TemplateLimits()
MAX_INT_BITS = 4096  # integers past ~1,200 digits: no prompt needs them, `**` makes them fast
MAX_NODES = 20_000  # parsed template nodes: bounds the Python code Jinja generates and compiles
_CHARS_PER_UNIT = 256
_ITEMS_PER_UNIT = 8
_MACRO_CALL = 25  # a macro call costs about as much time as 25 loop iterations (measured)


class TemplateLimitError(ValueError):
    """A rendering went over a limit of its ``TemplateLimits``."""


class _Budget:
    """The work left to one rendering."""

    __slots__ = ("left", "limits")

    def __init__(self, limits: TemplateLimits) -> None:
        self.limits = limits
        self.left = limits.max_operations

    def charge(self, units: int) -> None:
        self.left -= units
        if self.left < 0:
            raise TemplateLimitError(
                f"the template does more than {self.limits.max_operations} operations "
                "(templates.max_operations)"
            )


_BUDGET: ContextVar[_Budget | None] = ContextVar("monitor_template_budget", default=None)


def _size_error(what: str, limits: TemplateLimits) -> TemplateLimitError:
    return TemplateLimitError(
        f"{what} would be over {limits.max_output} characters (templates.max_output)"
    )


# ---------------------------------------------------------------- sizes


def _flat_weight(value: Any) -> int | None:
    """The weight of a value without parts, None for a container."""
    if isinstance(value, str | bytes | bytearray):
        return len(value)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return 1
    if isinstance(value, int):
        return value.bit_length() // 3 + 1
    if isinstance(value, range):
        return len(value)
    if isinstance(value, list | tuple | dict | set | frozenset | Namespace):
        return None
    return 1  # macros, loop contexts, undefined values, iterators: their parts are not built yet


def _parts(value: Any) -> Iterator[Any]:
    if isinstance(value, Namespace):
        value = object.__getattribute__(value, "_Namespace__attrs")
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield item
    else:
        yield from value


def weight(value: Any, limit: int) -> int:
    """Characters (for text) and elements (for containers, expanded through shared parts) of
    ``value``, or ``limit + 1`` as soon as it is known to be above ``limit``.

    Linear in the distinct parts: a list made by doubling a list 40 times is measured in
    40 steps, not 2^40. A container that holds itself counts once.
    """
    flat = _flat_weight(value)
    if flat is not None:
        return flat
    memo: dict[int, int] = {}
    open_ids = {id(value)}
    stack: list[list[Any]] = [[value, _parts(value), 1]]
    while stack:
        frame = stack[-1]
        descended = False
        for part in frame[1]:
            w = _flat_weight(part)
            if w is None:
                pid = id(part)
                if pid in memo:
                    w = memo[pid]
                elif pid in open_ids:
                    w = 1
                else:
                    open_ids.add(pid)
                    stack.append([part, _parts(part), 1])
                    descended = True
                    break
            frame[2] += w
            if frame[2] > limit:
                return limit + 1
        if descended:
            continue
        stack.pop()
        memo[id(frame[0])] = frame[2]
        open_ids.discard(id(frame[0]))
        if not stack:
            return int(frame[2])
        stack[-1][2] += frame[2]
        if stack[-1][2] > limit:
            return limit + 1
    return 0  # pragma: no cover - the loop returns


def _units(value: Any, w: int) -> int:
    per = _ITEMS_PER_UNIT if _flat_weight(value) is None else _CHARS_PER_UNIT
    return w // per


def _take(budget: _Budget | None, what: str, *values: Any) -> int:
    """Charge for handling ``values``; refuse any over the size limit. Their total weight."""
    if budget is None:  # constant folding at compile time: nothing to count
        return 0
    limit = budget.limits.max_output
    total = 0
    units = 1
    for value in values:
        if type(value) is str:  # the common case, first: item fields and outputs
            w = len(value)
            units += w // _CHARS_PER_UNIT
        else:
            w = weight(value, limit)
            units += _units(value, w)
        if w > limit:
            raise _size_error(what, budget.limits)
        total += w
    budget.left -= units
    if budget.left < 0:
        budget.charge(0)  # raises
    return total


def _expect(budget: _Budget | None, what: str, size: int, per: int = _CHARS_PER_UNIT) -> None:
    """Refuse an operation whose result would be ``size`` characters (or elements, ``per``
    of them a unit), before it runs; charge for building it."""
    if budget is None:
        return
    if size > budget.limits.max_output:
        raise _size_error(what, budget.limits)
    budget.charge(size // per)


def _check_ints(budget: _Budget | None, what: str, args: Iterable[Any]) -> None:
    """No integer argument may exceed the size limit: widths and counts allocate that much."""
    if budget is None:
        return
    for arg in args:
        if (
            isinstance(arg, int)
            and not isinstance(arg, bool)
            and abs(arg) > budget.limits.max_output
        ):
            raise _size_error(f"{what} with argument {arg}", budget.limits)


# ---------------------------------------------------------------- format strings

_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[a-zA-Z%]")
_FORMAT_WIDTH = re.compile(r"\d+")


def _percent_size(fmt: str, args: Any, limit: int) -> int:
    """An upper bound on the length of ``fmt % args``."""
    specs = _PERCENT_SPEC.findall(fmt)
    values = list(args.values()) if isinstance(args, Mapping) else args
    values = list(values) if isinstance(values, tuple | list) else [values]
    widest = max((weight(v, limit) for v in values), default=0)
    for width, precision in specs:
        for number in (width, precision):
            if number.isdigit():
                widest = max(widest, int(number))
    star = max(
        (abs(v) for v in values if isinstance(v, int) and not isinstance(v, bool)), default=0
    )
    if any("*" in (w, p) for w, p in specs):
        widest = max(widest, star)
    return len(fmt) + len(specs) * (widest + 32)


def _format_size(fmt: str, args: Sequence[Any], kwargs: Mapping[str, Any], limit: int) -> int:
    """An upper bound on the length of ``fmt.format(*args, **kwargs)``."""
    fields = 0
    widest = max((weight(v, limit) for v in (*args, *kwargs.values())), default=0)
    try:
        parsed = list(string.Formatter().parse(fmt))
    except ValueError:
        return len(fmt)  # str.format will raise the same error
    for _, name, spec, _ in parsed:
        if name is None:
            continue
        fields += 1
        for number in _FORMAT_WIDTH.findall(spec or ""):
            widest = max(widest, int(number))
    return len(fmt) + fields * (widest + 32)


# ---------------------------------------------------------------- filters


def _tojson(value: Any) -> str:
    # Jinja's own tojson HTML-escapes '<' and '&'; request bodies need plain JSON
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()  # raises UndefinedError naming the field
    return json.dumps(value, ensure_ascii=False)


def _expect_filter(
    budget: _Budget, name: str, value: Any, args: tuple[Any, ...], kw: dict[str, Any]
) -> None:
    """Size checks, before it runs, of the filters whose output can dwarf their input."""
    limit = budget.limits.max_output
    what = f"the result of the {name} filter"
    text = len(value) if isinstance(value, str) else weight(value, limit)
    if name == "replace" and isinstance(value, str):
        old = args[0] if args else kw.get("old", "")
        new = args[1] if len(args) > 1 else kw.get("new", "")
        count = value.count(old) if isinstance(old, str) and old else len(value) + 1
        _expect(budget, what, text + count * weight(new, limit))
    elif name == "join":
        sep = args[0] if args else kw.get("d", "")
        items = len(value) if isinstance(value, Sequence | Mapping) else text
        _expect(budget, what, text + items * weight(sep, limit))
    elif name == "indent":
        width = args[0] if args else kw.get("width", 4)
        pad = width if isinstance(width, int) else weight(width, limit)
        lines = value.count("\n") + 1 if isinstance(value, str) else 1
        _expect(budget, what, text + lines * pad)
    elif name == "wordwrap":
        width = args[0] if args else kw.get("width", 79)
        wrap = args[2] if len(args) > 2 else kw.get("wrapstring", "\n")
        lines = text // max(int(width), 1) + text if isinstance(width, int) else text
        _expect(budget, what, text + lines * weight(wrap, limit))
    elif name == "format" and isinstance(value, str):
        _expect(budget, what, _percent_size(value, kw or args, limit))
    elif name == "urlize":
        _expect(budget, what, text * (1 + sum(weight(a, limit) for a in (*args, *kw.values()))))
    elif name in {"slice", "batch"}:
        count = args[0] if args else kw.get("slices" if name == "slice" else "linecount", 1)
        pieces = count if name == "slice" and isinstance(count, int) else text
        _expect(budget, what, 2 * (text + max(pieces, 0)), _ITEMS_PER_UNIT)
    elif name == "sum":
        start = args[1] if len(args) > 1 else kw.get("start", 0)
        if not isinstance(start, int | float):  # sum of lists or strings is quadratic
            raise TemplateLimitError("the sum filter adds numbers only")


def _bounded(name: str, func: Callable[..., Any], kind: str) -> Callable[..., Any]:
    """``func`` (a filter or a test) charged and size-checked on every call."""
    pass_arg = _PassArg.from_obj(func)

    @pass_context
    def bounded(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        budget = _BUDGET.get()
        what = f"the input of the {name} {kind}"
        _take(budget, what, value, *args, *kwargs.values())
        if budget is not None:
            _check_ints(budget, f"the {name} {kind}", (*args, *kwargs.values()))
            if kind == "filter":
                _expect_filter(budget, name, value, args, kwargs)
        if pass_arg is _PassArg.context:
            result = func(context, value, *args, **kwargs)
        elif pass_arg is _PassArg.eval_context:
            result = func(context.eval_ctx, value, *args, **kwargs)
        elif pass_arg is _PassArg.environment:
            result = func(context.environment, value, *args, **kwargs)
        else:
            result = func(value, *args, **kwargs)
        _take(budget, f"the result of the {name} {kind}", result)
        return result

    bounded.__name__ = getattr(func, "__name__", name)
    return bounded


@pass_context
def _loop_filter(_context: Context, iterable: Any, cost: int) -> Iterator[Any]:
    """The iterable of a ``for`` loop, charging ``cost`` per element."""
    budget = _BUDGET.get()
    _take(budget, "the sequence of a for loop", iterable)
    for element in iterable:
        if budget is not None:
            budget.charge(cost)
        yield element


@pass_context
def _charge_filter(_context: Context, value: str, cost: int) -> str:
    """Charge ``cost`` where a macro or call block body starts; outputs nothing."""
    budget = _BUDGET.get()
    if budget is not None:
        budget.charge(cost)
    return value


@pass_context
def _concat_filter(_context: Context, parts: list[Any]) -> str:
    """``a ~ b ~ c`` with its size checked before the string is built."""
    budget = _BUDGET.get()
    size = _take(budget, "an operand of ~", *parts)
    _expect(budget, "the result of ~", size)
    result = "".join(str(part) for part in parts)
    _take(budget, "the result of ~", result)
    return result


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a > b,
    "gteq": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lteq": lambda a, b: a <= b,
    "in": lambda a, b: a in b,
    "notin": lambda a, b: a not in b,
}


@pass_context
def _compare_filter(_context: Context, operands: list[Any], ops: tuple[str, ...]) -> bool:
    """``a < b``, ``a in b``, ... charged by the size of the operands (a chain compares
    left to right and stops at the first false link, as Python does)."""
    budget = _BUDGET.get()
    _take(budget, "an operand of a comparison", *operands)
    left = operands[0]
    for op, right in zip(ops, operands[1:], strict=True):
        if not _COMPARE[op](left, right):
            return False
        left = right
    return True


_INTERNAL = {
    "_monitor_loop": _loop_filter,
    "_monitor_charge": _charge_filter,
    "_monitor_concat": _concat_filter,
    "_monitor_compare": _compare_filter,
}


# ---------------------------------------------------------------- instrumentation


def _text_size(node: nodes.Node) -> int:
    return sum(len(data.data) for data in node.find_all(nodes.TemplateData))


def _filter(node: nodes.Expr, name: str, *args: Any, lineno: int) -> nodes.Filter:
    call = nodes.Filter(node, name, [nodes.Const(a) for a in args], [], None, None)
    call.set_lineno(lineno)
    return call


class _Instrument(NodeTransformer):
    """Rewrites a parsed template so that loops, ``~`` and comparisons are counted."""

    def visit_For(self, node: nodes.For) -> nodes.Node:  # noqa: N802 - the visitor's naming
        self.generic_visit(node)
        cost = 1 + sum(_text_size(n) for n in node.body) // _CHARS_PER_UNIT
        node.iter = _filter(cast(nodes.Expr, node.iter), "_monitor_loop", 1, lineno=node.lineno)
        node.body.insert(0, self._charge(cost, node.lineno))
        return node

    def visit_Macro(self, node: nodes.Macro) -> nodes.Node:  # noqa: N802
        self.generic_visit(node)
        cost = _MACRO_CALL + sum(_text_size(n) for n in node.body) // _CHARS_PER_UNIT
        node.body.insert(0, self._charge(cost, node.lineno))
        return node

    def visit_CallBlock(self, node: nodes.CallBlock) -> nodes.Node:  # noqa: N802
        self.generic_visit(node)
        cost = _MACRO_CALL + sum(_text_size(n) for n in node.body) // _CHARS_PER_UNIT
        node.body.insert(0, self._charge(cost, node.lineno))
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:  # noqa: N802
        self.generic_visit(node)
        return _filter(nodes.List(list(node.nodes)), "_monitor_concat", lineno=node.lineno)

    def visit_Compare(self, node: nodes.Compare) -> nodes.Node:  # noqa: N802
        self.generic_visit(node)
        operands = nodes.List([node.expr, *(o.expr for o in node.ops)])
        ops = tuple(o.op for o in node.ops)
        return _filter(operands, "_monitor_compare", ops, lineno=node.lineno)

    @staticmethod
    def _charge(cost: int, lineno: int) -> nodes.Output:
        out = nodes.Output([_filter(nodes.Const(""), "_monitor_charge", cost, lineno=lineno)])
        out.set_lineno(lineno)
        return out


class _BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with every operation counted and sized (module docstring)."""

    # intercepting these also keeps Jinja from folding `10 ** 10 ** 10` at compile time
    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        # the lexer is linear; the parser and compiler recurse, so count before them
        for tokens, _ in enumerate(self.lex(source, name, filename)):
            if tokens >= MAX_NODES:
                raise TemplateLimitError(f"the template has over {MAX_NODES} tokens")
        tree = super()._parse(source, name, filename)
        size = sum(1 for _ in tree.find_all(nodes.Node))
        if size > MAX_NODES:
            raise TemplateLimitError(
                f"the template has {size} parts, over the limit of {MAX_NODES}"
            )
        instrumented = _Instrument().visit(tree)
        instrumented.set_environment(self)
        return instrumented  # type: ignore[no-any-return]

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        budget = _BUDGET.get()
        what = f"the result of {operator}"
        _take(budget, f"an operand of {operator}", left, right)
        if budget is not None:
            limit = budget.limits.max_output
            if operator == "*":
                for seq, times in ((left, right), (right, left)):
                    if isinstance(times, int) and not isinstance(seq, int | float):
                        _expect(budget, what, weight(seq, limit) * max(times, 0))
                if isinstance(left, int) and isinstance(right, int):
                    _check_bits(left.bit_length() + right.bit_length())
            elif operator == "**" and isinstance(left, int) and isinstance(right, int):
                _check_bits(left.bit_length() * max(right, 0))
            elif operator == "+":
                if not isinstance(left, int | float):
                    _expect(budget, what, weight(left, limit) + weight(right, limit))
            elif operator == "%" and isinstance(left, str):
                _expect(budget, what, _percent_size(left, right, limit))
        result = super().call_binop(context, operator, left, right)
        _take(budget, what, result)
        return result

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        budget = _BUDGET.get()
        name = getattr(__obj, "__name__", "a function")
        owner = getattr(__obj, "__self__", None)
        _take(budget, f"an argument of {name}()", *args, *kwargs.values())
        if __obj is not safe_range:  # range() is capped by the sandbox, its loop counted
            _check_ints(budget, f"{name}()", (*args, *kwargs.values()))
        if isinstance(owner, str | list | tuple | dict):
            _take(budget, f"the object of {name}()", owner)
        result = super().call(__context, __obj, *args, **kwargs)
        _take(budget, f"the result of {name}()", result)
        return result

    def getattr(self, obj: Any, attribute: str) -> Any:
        result = super().getattr(obj, attribute)
        _take(_BUDGET.get(), f"the attribute {attribute}", result)
        return result

    def getitem(self, obj: Any, argument: Any) -> Any:
        result = super().getitem(obj, argument)
        _take(_BUDGET.get(), "an item or slice", result)
        return result

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        fmt: str = value.__self__

        def bounded(*args: Any, **kwargs: Any) -> str:
            budget = _BUDGET.get()
            if budget is not None:
                mapping = args[0] if value.__name__ == "format_map" and args else kwargs
                positional = () if value.__name__ == "format_map" else args
                size = _format_size(fmt, positional, mapping, budget.limits.max_output)
                _expect(budget, "the result of format()", size)
            return wrapper(*args, **kwargs)

        return bounded


def _check_bits(bits: int) -> None:
    if bits > MAX_INT_BITS:
        raise TemplateLimitError(f"the template builds an integer of more than {MAX_INT_BITS} bits")


@pass_context
def _finalize(_context: Context, value: Any) -> Any:
    _take(_BUDGET.get(), "an output value", value)
    return value


@lru_cache(maxsize=1)
def _environment() -> _BoundedEnvironment:
    env = _BoundedEnvironment(undefined=StrictUndefined, autoescape=False, finalize=_finalize)
    env.filters["tojson"] = _tojson
    env.filters = {name: _bounded(name, f, "filter") for name, f in env.filters.items()}
    env.tests = {
        name: _bounded(name, cast(Callable[..., Any], f), "test") for name, f in env.tests.items()
    }
    env.filters.update(_INTERNAL)
    env.globals.pop("lipsum", None)  # lipsum(n) writes n paragraphs: no use in a prompt
    return env


class Template:
    """A compiled template that knows which top-level fields it reads."""

    def __init__(self, source: str, limits: TemplateLimits = DEFAULT_LIMITS) -> None:
        env = _environment()
        try:
            parsed = env.parse(source)
            self.fields = frozenset(meta.find_undeclared_variables(parsed))
            self._template = env.from_string(source)
        except TemplateError as exc:
            raise ValueError(f"invalid template: {exc}") from None
        except TemplateLimitError as exc:
            raise ValueError(f"invalid template: {exc}") from None
        except (RecursionError, MemoryError):
            raise ValueError("invalid template: nested too deeply to compile") from None
        self.source = source
        self.limits = limits

    def missing_fields(self, fields: Mapping[str, Any]) -> list[str]:
        """Fields the template reads that the item does not have, sorted."""
        return sorted(f for f in self.fields if f not in fields)

    def render(self, fields: Mapping[str, Any]) -> str:
        """Render within the limits; raises ValueError naming the problem (missing field,
        sandbox violation, a limit of ``TemplateLimits`` crossed)."""
        budget = _Budget(self.limits)
        token = _BUDGET.set(budget)
        chunks: list[str] = []
        size = 0
        try:
            for chunk in self._template.generate(fields):
                size += len(chunk)
                if size > self.limits.max_output:
                    raise _size_error("the output", self.limits)
                budget.left -= len(chunk) // _CHARS_PER_UNIT
                chunks.append(chunk)
            budget.charge(0)  # the last chunks' charge
        # Security/UndefinedError are TemplateErrors; the sandbox raises OverflowError for a
        # range() past its limit; TypeError for operations on the wrong types; a limit
        # crossed is a TemplateLimitError (a ValueError); macros calling themselves end in
        # RecursionError.
        except TemplateLimitError as exc:
            raise TemplateLimitError(f"template error: {exc}") from None
        except (TemplateError, TypeError, OverflowError, ValueError, ArithmeticError) as exc:
            raise ValueError(f"template error: {exc}") from None
        except RecursionError:
            raise ValueError("template error: recursion too deep") from None
        except MemoryError:
            raise TemplateLimitError("template error: out of memory") from None
        finally:
            _BUDGET.reset(token)
        return "".join(chunks)
