"""The watchlist query language: text -> query tree (pure).

    (@sistan_places OR Baluch*) AND title:(attack* OR "border guards")
    ambassador NEAR/8 (return* OR resum*) AND NOT (recall* OR summon*)

Operators are case-insensitive: OR, AND (also implied between two terms), NOT, NEAR/n.
Precedence from loosest to tightest: OR, AND, NOT, NEAR, then `field:` qualifiers. A grammar
and an LALR parser (lark) do the parsing, so every syntax error has a line and a column.
"""

from __future__ import annotations

import re
from functools import cache

import lark
import re2

from monitor.text import normalise
from monitor.watchlists.model import (
    DEFAULT_FIELDS,
    And,
    Near,
    Node,
    Not,
    Or,
    Regex,
    SetRef,
    Term,
    Word,
    compile_regex,
)

MAX_NEAR = 100
DEFAULT_NEAR = 10
_WORD_CHARS = r"[^\s()\"@\/:]"

GRAMMAR = rf"""
?start: or_expr
?or_expr: and_expr (_OR and_expr)*
?and_expr: not_expr (_AND? not_expr)*
?not_expr: NOT not_expr | near_expr
?near_expr: unary (NEAR unary)*
?unary: FIELD unary | LPAR or_expr RPAR | PHRASE | WORD | SETREF | REGEX

_OR.3: /or(?!{_WORD_CHARS})/i
_AND.3: /and(?!{_WORD_CHARS})/i
NOT.3: /not(?!{_WORD_CHARS})/i
NEAR.3: /near(\/\d+)?(?!{_WORD_CHARS})/i
FIELD.3: /(title|summary|source|link):/i
LPAR: "("
RPAR: ")"
PHRASE: /"[^"]*"/
REGEX: /\/(\\.|[^\\\/\n])+\//
SETREF: /@{_WORD_CHARS}+/
// An operator is never a word: a query searches for "or" only when it is quoted.
WORD: /(?!(and|or|not|near)(?!{_WORD_CHARS})){_WORD_CHARS}+/i
%ignore /\s+/
"""

# How terminals read in an error message.
_EXPECTED_NAMES = {
    "RPAR": "')'",
    "LPAR": "a term",
    "WORD": "a term",
    "PHRASE": "a term",
    "SETREF": "a term",
    "REGEX": "a term",
    "FIELD": "a term",
    "NOT": "a term",
    "_OR": "an operator",
    "_AND": "an operator",
    "NEAR": "an operator",
    "$END": "the end of the query",
}
_SET_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")


class QuerySyntaxError(ValueError):
    """A query or term that cannot be used, with the position of the problem (1-based)."""

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        self.line = line
        self.column = column
        where = f"column {column}" if line == 1 else f"line {line}, column {column}"
        super().__init__(f"{message} at {where}")
        self.reason = message


@cache
def _parser() -> lark.Lark:
    return lark.Lark(GRAMMAR, parser="lalr", lexer="contextual", propagate_positions=True)


def parse_query(text: str) -> Node:
    """Parse a query; SetRef leaves are left for the loader to resolve."""
    if not text.strip():
        raise QuerySyntaxError("the query is empty; write what to match, e.g. 'Zahedan AND attack*'")
    try:
        tree = _parser().parse(text)
    except lark.UnexpectedInput as e:
        raise _syntax_error(e, text) from None
    return _build(tree, DEFAULT_FIELDS)


def _syntax_error(error: lark.UnexpectedInput, text: str) -> QuerySyntaxError:
    line, column = max(error.line, 1), max(error.column, 1)
    if isinstance(error, lark.UnexpectedCharacters):
        char = text[error.pos_in_stream] if error.pos_in_stream is not None else "?"
        if char == '"':
            return QuerySyntaxError('unclosed quote: a phrase needs a closing "', line, column)
        if char == "/":
            return QuerySyntaxError("unclosed regex: write it as /pattern/", line, column)
        if char == ":":
            return QuerySyntaxError("':' follows a field name: title, summary, source or link", line, column)
        return QuerySyntaxError(f"unexpected {char!r}", line, column)
    token = getattr(error, "token", None)
    expected = set(getattr(error, "expected", ()) or ())
    at_end = token is None or token.type == "$END"
    if at_end:
        lines = text.rstrip().splitlines() or [""]
        line, column = len(lines), len(lines[-1]) + 1
    if "RPAR" in expected:
        wanted = "')'"
    else:
        wanted = " or ".join(sorted({_EXPECTED_NAMES.get(name, name) for name in expected}))
    found = "the query ends" if at_end else f"found {str(token)!r}"
    return QuerySyntaxError(f"expected {wanted}, {found}", line, column)


def _build(tree: lark.Tree[lark.Token] | lark.Token, fields: tuple[str, ...]) -> Node:
    if isinstance(tree, lark.Token):
        return _leaf(tree, fields)
    kids = tree.children
    match tree.data:
        case "or_expr":
            return Or(tuple(_build(k, fields) for k in kids))
        case "and_expr":
            return And(tuple(_build(k, fields) for k in kids))
        case "not_expr":
            return Not(_build(kids[1], fields))
        case "near_expr":
            node = _positional(kids[0], fields)
            for operator, operand in zip(kids[1::2], kids[2::2], strict=True):
                assert isinstance(operator, lark.Token)
                node = Near(node, _positional(operand, fields), _distance(operator))
            return node
        case "unary":
            first = kids[0]
            assert isinstance(first, lark.Token)
            if first.type == "FIELD":
                # An inner qualifier wins: title:(a OR summary:b) looks for b in the summary only.
                return _build(kids[1], (first.value[:-1].lower(),))
            return _build(kids[1], fields)  # ( expr )
    raise AssertionError(tree.data)


def _positional(tree: lark.Tree[lark.Token] | lark.Token, fields: tuple[str, ...]) -> Node:
    node = _build(tree, fields)
    bad = _non_positional(node)
    if bad:
        line, column = _position(tree)
        raise QuerySyntaxError(
            f"NEAR joins words, phrases, @sets, /regexes/ or OR-groups of them, not {bad}", line, column
        )
    return node


def _non_positional(node: Node) -> str:
    match node:
        case And():
            return "AND"
        case Not():
            return "NOT"
        case Or(children):
            return next((bad for c in children if (bad := _non_positional(c))), "")
        case Near(left, right, _):
            return _non_positional(left) or _non_positional(right)
    return ""


def _position(tree: lark.Tree[lark.Token] | lark.Token) -> tuple[int, int]:
    if isinstance(tree, lark.Token):
        return tree.line or 1, tree.column or 1
    return getattr(tree.meta, "line", 1), getattr(tree.meta, "column", 1)


def _distance(token: lark.Token) -> int:
    _, _, digits = token.value.partition("/")
    distance = int(digits) if digits else DEFAULT_NEAR
    if distance > MAX_NEAR:
        raise QuerySyntaxError(f"NEAR/{distance} is too far; use at most NEAR/{MAX_NEAR}", *_position(token))
    return distance


def _leaf(token: lark.Token, fields: tuple[str, ...]) -> Node:
    line, column = _position(token)
    value = token.value
    try:
        match token.type:
            case "WORD":
                return parse_term(value, fields)
            case "PHRASE":
                return parse_term(value[1:-1], fields)
            case "REGEX":
                return parse_regex(value[1:-1], fields)
            case "SETREF":
                name = value[1:]
                if not _SET_NAME.fullmatch(name):
                    raise QuerySyntaxError(f"{value!r} is not a term-set name (letters, digits, _ and -)")
                return SetRef(name, fields, column, line)
    except QuerySyntaxError as e:
        raise QuerySyntaxError(e.reason, line, column) from None
    raise QuerySyntaxError(f"unexpected {value!r}", line, column)


def parse_term(text: str, fields: tuple[str, ...] = DEFAULT_FIELDS) -> Term:
    """A word or phrase; each word may end in `*` to match any word starting with it."""
    words: list[Word] = []
    for piece in text.split():
        prefix = piece.endswith("*")
        stem = piece.rstrip("*")
        if "*" in stem:
            raise QuerySyntaxError(f"{piece!r}: a wildcard * may only end a word")
        parts = normalise(stem).split()
        if not parts:
            if prefix:
                raise QuerySyntaxError(f"{piece!r} has no letters or digits to match")
            continue  # punctuation between words, as in "Sistan & Baluchestan": a word break
        words.extend(Word(p) for p in parts[:-1])
        words.append(Word(parts[-1], prefix))
    if not words:
        if text.strip():
            raise QuerySyntaxError(f"{' '.join(text.split())!r} has no letters or digits to match")
        raise QuerySyntaxError("an empty phrase matches nothing")
    if any(w.prefix and len(w.text) < 2 for w in words):
        raise QuerySyntaxError(f"{text!r}: a wildcard needs at least two letters before the *")
    return Term(" ".join(text.split()), tuple(words), fields)


def parse_regex(pattern: str, fields: tuple[str, ...] = DEFAULT_FIELDS) -> Regex:
    """A regex on normalised text; RE2 runs in linear time, so no pattern can hang the matcher."""
    try:
        compiled = compile_regex(pattern)
    except re2.error as e:
        reason = e.args[0].decode(errors="replace") if e.args and isinstance(e.args[0], bytes) else str(e)
        raise QuerySyntaxError(f"/{pattern}/ is not a valid regular expression ({reason})") from None
    if compiled.search("") is not None:
        raise QuerySyntaxError(f"/{pattern}/ matches empty text, so it would match every item")
    return Regex(pattern, fields)
