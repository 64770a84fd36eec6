"""Printing the expression graph (:mod:`mlpcodegen.core.graph`) in a language.

A :class:`Language` is a table: how the language spells a literal, each function
(a template over ``{a}``), a selection, max/min, a statement; what a function needs
(an import, an inline definition), recorded while printing.  A :class:`Printer` walks
graph nodes with one language and writes statements into :class:`~._text.Lines`.
Nothing here knows which language it writes, and nothing reads printed text back:
what a later step needs to know about a printed piece (that it is a number, or
parenthesised as a whole) travels with it as a :class:`Printed` string.
"""
from __future__ import annotations

import math
import string
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Callable, Hashable, Mapping, Optional, Sequence

from ..core.errors import UnsupportedError
from ..core.graph import (
    FALLBACKS,
    Builder,
    Call,
    Comment,
    Item,
    Largest,
    Let,
    Node,
    Num,
    Op,
    Ref,
    Statement,
    Sum,
    Where,
    children,
)
from ._text import Lines

_TERMS_PER_LINE = 4


class UnwritableError(UnsupportedError):
    """A function the language cannot write (no spelling, no rewrite): the layer that needs
    it is refused, and :func:`mlpcodegen.backends.emit` adds which activations the target lacks."""


class Printed(str):
    """Printed text that remembers what it is: ``inner`` is the text inside its outer
    parentheses when they enclose all of it (a statement drops them), ``number`` says
    it is a constant (Python's max/min put a constant second)."""

    inner: Optional[str] = None
    number: bool = False

    @classmethod
    def of(cls, text: str, inner: Optional[str] = None, number: bool = False) -> "Printed":
        printed = cls(text)
        printed.inner, printed.number = inner, number
        return printed


def wrap(inner: str, number: bool = False) -> Printed:
    """``(inner)``, remembering ``inner``."""
    return Printed.of(f"({inner})", inner, number)


def top(text: str) -> str:
    """``text`` without the parentheses that enclose all of it (as a statement's value)."""
    inner = getattr(text, "inner", None)
    return text if inner is None else inner


@dataclass(frozen=True)
class Template:
    """A format string of a language table, analysed once: whether its outer
    parentheses enclose everything, and whether its one argument ``{a}`` sits alone in
    parentheses (``tanhf({a})``: a sum may then be written there without its own).
    The answers are cached: every printed call asks them."""

    text: str

    @cached_property
    def fields(self) -> list[tuple[str, Optional[str]]]:
        return [(literal, name) for literal, name, _, _ in string.Formatter().parse(self.text)]

    @cached_property
    def wrapped(self) -> bool:
        return _encloses(self.text)

    @cached_property
    def bare_argument(self) -> bool:
        parts = self.fields
        names = [name for _, name in parts if name is not None]
        if names != ["a"]:
            return False
        before = parts[0][0]
        after = "".join(literal for literal, _ in parts[1:])
        return before.endswith("(") and after.startswith(")")

    def fill(self, **values: str) -> Printed:
        text = self.text.format(**values)
        return Printed.of(text, text[1:-1]) if self.wrapped else Printed.of(text)

    def around(self) -> tuple[str, str]:
        """(head, tail) around ``{a}`` in the template's unparenthesised form."""
        text = self.text[1:-1] if self.wrapped else self.text
        parts = [(literal, name) for literal, name, _, _ in string.Formatter().parse(text)]
        return parts[0][0], "".join(literal for literal, _ in parts[1:])


@lru_cache(maxsize=None)
def template(text: str) -> Template:
    return Template(text)


def _encloses(text: str) -> bool:
    """Whether ``text`` (a template of our own tables) is ``( ... )`` as a whole."""
    if not (text.startswith("(") and text.endswith(")")):
        return False
    depth = 0
    for i, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and i < len(text) - 1:
            return False
    return True


def fill(text: str, **values: str) -> Printed:
    return template(text).fill(**values)


@dataclass(frozen=True)
class Language:
    """How one target spells the graph.

    ``functions`` maps every name of :data:`mlpcodegen.core.graph.FUNCTIONS` to a template
    over ``{a}``; ``where`` is a template over ``{c} {a} {b}``; ``max2``/``min2`` write a
    two-argument max/min of printed pieces; ``max_statement(name, values)`` writes
    statements setting ``name`` to the largest value.  ``needs`` maps a function, an
    op or ``"where"`` to what using it requires (an import line, an inline definition's
    key): the printer collects them in :attr:`Printer.needed`.
    """

    literal: Callable[[float], str]  # a non-negative float -> exact literal text
    functions: Mapping[str, str]
    where: str
    max2: Callable[[Printed, Printed], str]
    min2: Callable[[Printed, Printed], str]
    max_statement: Callable[[str, Sequence[str]], list[str]]
    declare: str = ""  # prefix of an immutable local ("const float ")
    end: str = ""  # statement terminator (";")
    wrap_in_parens: bool = False  # Python continues a long line only inside (...)
    stable: bool = True  # subtract the max before exp in softmax; False: the plain formula
    #: Longest sum in one statement; longer ones continue as ``z = z + ...`` (same
    #: left-to-right order, so the same rounding).  CPython's compiler recurses once per
    #: ``+``: a 3000-term expression raises RecursionError on import.  None: no limit.
    max_terms: Optional[int] = None
    divide: Optional[Callable[[Printed, Printed], str]] = None  # a / b when b is computed (None: "(a / b)")
    needs: Mapping[str, Hashable] = field(default_factory=dict)
    comment: Callable[[str], str] = lambda text: f"# {text}"

    def __post_init__(self) -> None:
        if self.max_terms is not None and (self.declare or self.max_terms < 2):
            # a long sum continues as ``z = z + ...``: the name must be assignable twice
            raise ValueError("a language that splits long sums (max_terms >= 2) must declare no locals")


def _binary(form: str) -> Callable[["Printer", Printed, Printed], str]:
    return lambda p, a, b: wrap(form.format(a=a, b=b))


#: op -> how it is printed from its printed arguments (the same in every language
#: except max/min and division, which the language supplies).
_OPS: dict[str, Callable[..., str]] = {
    "add": _binary("{a} + {b}"), "sub": _binary("{a} - {b}"), "mul": _binary("{a}*{b}"),
    "quotient": _binary("{a} / {b}"), "gt": _binary("{a} > {b}"), "ge": _binary("{a} >= {b}"),
    "div": lambda p, a, b: p.lang.divide(a, b) if p.lang.divide else wrap(f"{a} / {b}"),
    "max": lambda p, a, b: p.lang.max2(a, b), "min": lambda p, a, b: p.lang.min2(a, b),
    "neg": lambda p, a: wrap(f"-{a}"), "square": lambda p, a: wrap(f"{a}*{a}"),
}


class Printer:
    """Prints nodes and statements in ``lang``.  A node bound by a :class:`Let` prints
    as its name from then on; :attr:`needed` collects what the printed text requires."""

    def __init__(self, lang: Language, needed: Optional[set] = None) -> None:
        self.lang = lang
        self.names: dict[int, str] = {}
        self.needed: set = set() if needed is None else needed
        self._rewrites = Builder()  # nodes of fallback rewrites

    # -- expressions
    def expr(self, node: Node) -> Printed:
        name = self.names.get(id(node))
        if name is not None:
            return Printed.of(name)
        return _NODES[type(node)](self, node)

    def _num(self, node: Num) -> Printed:
        text = self.lang.literal(abs(node.value))
        return wrap(f"-{text}", number=True) if _negative(node.value) else Printed.of(text, number=True)

    def _op(self, node: Op) -> str:
        self._need(node.op)
        return _OPS[node.op](self, *(self.expr(a) for a in node.args))

    def _call(self, node: Call) -> Printed:
        if node.function not in self.lang.functions:
            return self._fallback(node)
        form = template(self.lang.functions[node.function])
        self._need(node.function)
        arg = self.expr(node.arg)
        if isinstance(node.arg, Sum) and form.bare_argument:
            arg = top(arg)  # exp(z - m), not exp((z - m))
        return form.fill(a=arg)

    def _fallback(self, node: Call) -> Printed:
        """A function the language does not spell, written with those it does
        (:data:`mlpcodegen.core.graph.FALLBACKS`); refused by name when there is no way."""
        rewrite = FALLBACKS.get(node.function)
        if rewrite is None:
            raise UnwritableError(f"this target cannot write {node.function}(): it has no spelling for it and "
                                   f"there is no rewrite; it spells {', '.join(sorted(self.lang.functions))}")
        return self.expr(rewrite(self._rewrites, node.arg))

    def _where(self, node: Where) -> Printed:
        self._need("where")
        return fill(self.lang.where, c=self.expr(node.cond), a=self.expr(node.a), b=self.expr(node.b))

    def _sum(self, node: Sum) -> Printed:
        return wrap(" ".join(self.terms(node)))

    def _largest(self, node: Largest) -> Printed:
        raise ValueError("the largest of several values is written as statements: bind it with a Let")

    def _need(self, key: str) -> None:
        if key in self.lang.needs:
            self.needed.add(self.lang.needs[key])

    def terms(self, node: Sum) -> list[str]:
        """``w0*x0``, ``+ w1*x1``, ..., ``+ b``: the sum's terms as printed, signs outside."""
        texts, signs = [], []
        for term in node.terms:
            value = self.expr(term.node)
            if term.coefficient is not None:
                value = f"{self.lang.literal(term.coefficient)}*{value}"
            elif _is_product(term.node):
                value = top(value)  # a product binds tighter than + and -: no parentheses as a term
            texts.append(value)
            signs.append(term.negative)
        if node.bias is not None:
            texts.append(self.lang.literal(abs(node.bias)))
            signs.append(_negative(node.bias))
        first = ("-" if signs[0] else "") + texts[0]
        return [first] + [("- " if s else "+ ") + t for s, t in zip(signs[1:], texts[1:])]

    # -- statements
    def statements(self, statements: Sequence[Statement], lines: Lines) -> None:
        for statement in statements:
            _STATEMENTS[type(statement)](self, statement, lines)

    def _comment(self, statement: Comment, lines: Lines) -> None:
        lines.add(self.lang.comment(statement.text))

    def _let(self, statement: Let, lines: Lines) -> None:
        name, node = statement.name, statement.node
        if id(node) in self.names or not _LETS.get(type(node), Printer._let_value)(self, name, node, lines):
            self._let_value(name, node, lines)
        self.names[id(node)] = name

    def _let_largest(self, name: str, node: Largest, lines: Lines) -> bool:
        lines.add(*self.lang.max_statement(name, [self.expr(a) for a in node.args]))
        return True

    def _let_sum(self, name: str, node: Sum, lines: Lines) -> bool:
        self.assign(lines, name, self.terms(node))
        return True

    def _let_call(self, name: str, node: Call, lines: Lines) -> bool:
        """``h = f(w0*x0 + ... + b)``: the sum written inside the call, when it can be."""
        if not self._inline(node):
            return False
        head, tail = template(self.lang.functions[node.function]).around()
        self._need(node.function)
        self.assign(lines, name, self.terms(node.arg), head, tail)
        return True

    def _let_value(self, name: str, node: Node, lines: Lines) -> bool:
        self._name_sums(node, name, lines)
        self.set(lines, name, self.expr(node))
        return True

    def _inline(self, node: Node) -> bool:
        """``h = f(w0*x0 + ... + b)``: the sum written inside the call, no name of its own."""
        return (isinstance(node, Call) and node.function in self.lang.functions and isinstance(node.arg, Sum)
                and node.arg.name is not None and id(node.arg) not in self.names
                and template(self.lang.functions[node.function]).bare_argument
                and not self._too_many(_term_count(node.arg)))

    def _name_sums(self, node: Node, name: str, lines: Lines) -> None:
        """Statements for the sums ``node`` reads that are not yet named: a
        pre-activation as ``z1_0 = ...`` (it is used more than once, or inside an
        operator), a sum too long for one statement under the statement's own name."""
        stack, unnamed = [node], 0
        while stack:
            current = stack.pop()
            if id(current) in self.names:
                continue
            if isinstance(current, Sum) and (current.name is not None or self._too_many(_term_count(current))):
                own = current.name or (name if not unnamed else f"{name}_{unnamed}")
                unnamed += current.name is None
                self.assign(lines, own, self.terms(current))
                self.names[id(current)] = own
                continue
            stack.extend(reversed(children(current)))

    def too_long(self, terms: Sequence[str]) -> bool:
        return self._too_many(len(terms))

    def _too_many(self, count: int) -> bool:
        return self.lang.max_terms is not None and count > self.lang.max_terms

    def assign(self, lines: Lines, name: str, terms: list[str], head: str = "", tail: str = "") -> None:
        """``name = head terms... tail`` over lines of a few terms each; a sum longer than
        the language takes (no head or tail then) in statements ``name = name + ...``."""
        if self.too_long(terms):
            step = self.lang.max_terms - 1
            self._statement(lines, name, terms[:step])
            for start in range(step, len(terms), step):
                self._statement(lines, name, [name] + terms[start : start + step])
            return
        self._statement(lines, name, terms, head, tail)

    def _statement(self, lines: Lines, name: str, terms: list[str], head: str = "", tail: str = "") -> None:
        lang = self.lang
        prefix = lang.declare + f"{name} = " + head
        chunks = [" ".join(terms[i : i + _TERMS_PER_LINE]) for i in range(0, len(terms), _TERMS_PER_LINE)]
        if len(chunks) > 1 and lang.wrap_in_parens and not head:
            prefix, tail = prefix + "(", ")" + tail
        if len(chunks) == 1:
            lines.add(prefix + chunks[0] + tail + lang.end)
            return
        lines.add(prefix + chunks[0])
        for chunk in chunks[1:-1]:
            lines.add(" " * len(prefix) + chunk)
        lines.add(" " * len(prefix) + chunks[-1] + tail + lang.end)

    def set(self, lines: Lines, name: str, text: str) -> None:
        lines.add(self.lang.declare + f"{name} = {top(text)}" + self.lang.end)


def _is_product(node: Node) -> bool:
    return isinstance(node, Op) and node.op in ("mul", "square")


def _term_count(node: Sum) -> int:
    return len(node.terms) + (node.bias is not None)


def _negative(value: float) -> bool:
    return math.copysign(1.0, value) < 0  # the sign bit: -0.0 prints as -0.0


_NODES: dict[type, Callable[[Printer, Node], str]] = {
    Num: Printer._num, Ref: lambda p, n: Printed.of(n.name), Item: lambda p, n: Printed.of(f"{n.array}[{n.index}]"),
    Op: Printer._op, Call: Printer._call, Where: Printer._where, Sum: Printer._sum, Largest: Printer._largest,
}
_STATEMENTS = {Comment: Printer._comment, Let: Printer._let}
#: node kind -> how a statement binding it is written (False: as an expression after all).
_LETS = {Largest: Printer._let_largest, Sum: Printer._let_sum, Call: Printer._let_call}
