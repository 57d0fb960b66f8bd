"""The HTML report (``backprop-verify --html PATH``, and ``_repr_html_`` in Jupyter): the results table, and
for every failure its diagnosis, the layer's own lines marked right or wrong (the culprit), third witness,
shrunk example, reproducing program and, for each wrong array, heat maps of expected, actual and their
difference; for a passing layer, its errors' histogram.

One self-contained page: inline CSS and SVG, a few lines of script that only add copy buttons, and a
Content-Security-Policy that allows nothing else, so the page makes no request and opens offline.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import linecache
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from backprop.verify import heatmap
from backprop.verify.mismatch import Culprit, Line, Located, Mismatch
from backprop.verify.registry import get_row
from backprop.verify.tolerances import TOLERANCES

if TYPE_CHECKING:  # rendered, never built here: the reports import this module when asked for HTML
    from backprop.verify.report import Failure, LayerReport, RunReport

CSS = """\
.bpv{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1b1b;background:#fff;
max-width:1180px;padding:4px 12px}
.bpv h1{font-size:21px;margin:8px 0 2px}.bpv h2{font-size:17px;margin:26px 0 6px;border-top:1px solid #ddd;
padding-top:12px}.bpv h3{font-size:15px;margin:14px 0 4px}.bpv h4{font-size:14px;margin:12px 0 2px}
.bpv .meta{color:#555;margin:0 0 8px}
.bpv table{border-collapse:collapse;margin:8px 0}.bpv th,.bpv td{border:1px solid #d0d0d0;padding:3px 8px;
text-align:left;vertical-align:top}.bpv th{background:#f3f3f3}.bpv td.num{text-align:right;
font-variant-numeric:tabular-nums}
.bpv .pass{color:#0a6b2c;font-weight:700}.bpv .fail,.bpv .error{color:#b0141f;font-weight:700}
.bpv .diagnosis{margin:4px 0}.bpv .code{font-family:ui-monospace,Menlo,Consolas,monospace;background:#f3f3f3;
padding:0 4px;border-radius:3px}.bpv .hint{margin:2px 0 4px 0;color:#333}
.bpv .hint::before{content:"hint: ";font-weight:700}
.bpv pre{background:#f6f6f6;border:1px solid #ddd;padding:8px;overflow:auto;font-size:12.5px;margin:4px 0;
white-space:pre}
.bpv .program{margin:4px 0}.bpv button.copy{display:block;margin:0 0 -1px auto;font-size:12px;
padding:1px 12px;cursor:pointer}.bpv button.copy[hidden]{display:none}
.bpv .maps{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start;margin:6px 0}
.bpv figure{margin:0}.bpv figcaption{font-size:13px;font-weight:600;margin-bottom:3px}
.bpv .scale{font-size:12.5px;color:#333;margin:2px 0 10px}
.bpv svg text{font:10px system-ui,sans-serif}.bpv svg text.tick,.bpv svg text.slice{fill:#333}
.bpv ul{margin:4px 0;padding-left:22px}
.bpv table.trace{font:12.5px/1.4 ui-monospace,Menlo,Consolas,monospace;margin:2px 0 10px}
.bpv table.trace td{border:none;border-bottom:1px solid #eee;padding:0 8px}
.bpv table.trace td.src{white-space:pre}.bpv table.trace td.mark{font-weight:700;white-space:nowrap}
.bpv table.trace td.node{color:#333;font-family:system-ui,sans-serif;font-size:12.5px}
.bpv tr.right td.mark{color:#0a6b2c}.bpv tr.unmatched td{color:#666}
.bpv tr.culprit td{background:#fde2e2;color:#7d0a12;font-weight:700}
.bpv tr.gap td{color:#888;border-bottom:none}.bpv p.function{margin:8px 0 0;font-weight:600}
.bpv .culprit-summary{border-left:4px solid #b0141f;padding:2px 8px;margin:4px 0}
"""

SCRIPT = """\
(function () {
  function select(pre, button) {
    var range = document.createRange();
    range.selectNodeContents(pre);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    button.textContent = ok ? "Copied" : "Selected: press Ctrl+C";
  }
  document.querySelectorAll(".bpv button.copy").forEach(function (button) {
    if (button.dataset.ready) { return; }
    button.dataset.ready = "1";
    button.hidden = false;
    button.addEventListener("click", function () {
      var pre = button.parentElement.querySelector("pre");
      var text = pre.textContent;
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(
          function () { button.textContent = "Copied"; },
          function () { select(pre, button); });
      } else {
        select(pre, button);
      }
    });
  });
})();
"""


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


CSP = (
    f"default-src 'none'; style-src {_sha256(CSS)}; script-src {_sha256(SCRIPT)}; img-src data:; "
    "base-uri 'none'; form-action 'none'"
)
"""Only this page's own style and script run, and only data: images load: nothing leaves the page."""


# ---- whole documents -------------------------------------------------------------------------------------


def document(run: RunReport, command: str = "") -> str:
    """The self-contained page for ``run``; ``command`` is the command line that produced it."""
    title = "backprop-verify report"
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{title}</title><style>{CSS}</style></head>\n<body>"
        f"{run_body(run, command)}<script>{SCRIPT}</script></body></html>\n"
    )


def fragment(report: RunReport | LayerReport) -> str:
    """The same content for a notebook cell's output: style, content and script, no page around them."""
    body = _wrapped(layer_body(report)) if hasattr(report, "layer") else run_body(report)  # type: ignore[arg-type]
    return f"<style>{CSS}</style>{body}<script>{SCRIPT}</script>"


def _wrapped(content: str) -> str:
    return f'<div class="bpv">{content}</div>'


def run_body(run: RunReport, command: str = "") -> str:
    failed = [r for r in run.layers if not r.passed]
    total = len(run.layers)
    verdict = (
        f'<span class="fail">{len(failed)} of {total} failed</span>'
        if failed
        else f'<span class="pass">all {total} passed</span>'
    )
    meta = f"seed {run.seed}, {run.max_examples} examples per layer: {verdict}"
    parts = ["<h1>backprop-verify report</h1>", f'<p class="meta">{meta}</p>']
    if command:
        parts.append(f'<p class="meta">command: <span class="code">{escape(command)}</span></p>')
    parts.append(results_table(run.layers))
    parts += [layer_body(r, in_run=True) for r in run.layers]
    return _wrapped("\n".join(parts))


# ---- the table -----------------------------------------------------------------------------------------------


def label(report: LayerReport) -> str:
    """The row's name for the library's own layer, else ``module.Class vs row`` (as the terminal says)."""
    try:
        row = get_row(report.against)
    except ValueError:
        return f"{report.layer} vs {report.against}"
    own = f"{row.layer.__module__}.{row.layer.__qualname__}"
    return report.name if report.layer == own else f"{report.layer} vs {report.against}"


def _verdict(report: LayerReport) -> str:
    css = "pass" if report.passed else "error" if report.error else "fail"
    return f'<span class="{css} verdict">{escape(report.verdict)}</span>'


def results_table(layers: Sequence[LayerReport]) -> str:
    head = ["layer", "dtype", "examples", "distinct shapes", "max abs error", "max rel error", "verdict"]
    head += ["scope and notes"]
    rows = []
    for r in layers:
        notes = [escape(r.scope_sentence())] if r.scope_sentence() else []
        if r.notes:
            notes.append(f"{len(r.notes)} note(s) below")
        cells = [
            f"<td>{escape(label(r))}</td><td>{r.dtype}</td>",
            f'<td class="num">{r.examples}</td><td class="num">{r.distinct_shapes}</td>',
            f'<td class="num">{r.max_abs:.3g}</td><td class="num">{r.max_rel:.3g}</td>',
            f"<td>{_verdict(r)}</td><td>{'<br>'.join(notes)}</td>",
        ]
        rows.append(f'<tr class="layer-row" data-passed="{str(r.passed).lower()}">{"".join(cells)}</tr>')
    header = "".join(f"<th>{h}</th>" for h in head)
    return f'<table class="results"><thead><tr>{header}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


# ---- one layer ---------------------------------------------------------------------------------------------


def layer_body(report: LayerReport, in_run: bool = False) -> str:
    """One layer's verdict and what backs it: its failures, its error, or its errors' histogram."""
    parts = [f"<h2>{escape(label(report))} {report.dtype}: {_verdict(report)}</h2>"]
    if not in_run:  # alone (in a notebook): its row of the table too
        parts.append(results_table([report]))
    if report.error is not None:
        parts.append(f'<p class="error">error: {escape(report.error)}</p>')
    if report.scope_sentence():
        parts.append(f"<p>scope: {escape(report.scope_sentence())}</p>")
    if report.notes:
        parts.append("<ul>" + "".join(f"<li>note: {escape(n)}</li>" for n in report.notes) + "</ul>")
    for i, failure in enumerate(report.failures):
        parts.append(failure_body(failure, i, len(report.failures)))
    if report.passed and report.example_errors:
        parts.append(_error_histogram(report))
    return f'<section class="layer" data-verdict="{escape(report.verdict)}">{"".join(parts)}</section>'


def _error_histogram(report: LayerReport) -> str:
    try:
        rtol = get_row(report.against).tolerance(report.dtype).rtol
    except ValueError:
        rtol = TOLERANCES[report.dtype].rtol
    n = len(report.example_errors)
    return (
        f"<h4>Largest relative error per example ({n} examples)</h4>"
        + heatmap.histogram(report.example_errors, rtol, float(np.finfo(report.dtype).eps))
        + f'<p class="scale">each example counted once, at the largest relative error of its checks; '
        f"dashed: the tolerance's relative part, rtol = {rtol:.3g}</p>"
    )


# ---- one failure ---------------------------------------------------------------------------------------------


def failure_body(failure: Failure, i: int = 0, n: int = 1) -> str:
    """The headline, each wrong check (with its heat maps), the witness, the example and the program."""
    count = f" (failure {i + 1} of {n})" if n > 1 else ""
    shapes = ", ".join(f"{k} {v}" for k, v in failure.shapes.items())
    parts = [
        f"<h3>FAIL {escape(failure.headline())}{count}</h3>",
        f'<p class="meta">shapes: {escape(shapes)}; dtype: {failure.example.dtype}</p>',
    ]
    if failure.convention and failure.convention != "no parameters":
        parts.append(f'<p class="meta">convention: {escape(failure.convention)}</p>')
    outputs = _outputs(failure.against)
    for m in failure.mismatches:
        parts.append(mismatch_body(m, m.check in outputs))
    if failure.located is not None:
        parts.append(located_body(failure.located))
    if failure.witnesses:
        items = "".join(f"<li>{escape(w.sentence())}</li>" for w in failure.witnesses)
        parts.append(f"<h4>Third witness (finite differences)</h4><ul>{items}</ul>")
    example = failure.example.source()
    parts.append(f"<h4>Smallest failing example (shrunk by Hypothesis)</h4><pre>{escape(example)}</pre>")
    if failure.program:
        parts.append("<h4>Reproduce it: this program prints each wrong value next to jax.vjp's</h4>")
        parts.append(program_block(failure.program))
    if failure.reproduce:
        parts.append(f"<h4>Rerun the check</h4>{program_block(failure.reproduce)}")
    return f'<section class="failure">{"".join(parts)}</section>'


def _outputs(against: str) -> tuple[str, ...]:
    try:
        return get_row(against).outputs
    except ValueError:
        return ()


def program_block(text: str) -> str:
    """Selectable text; the copy button is hidden until the script shows it, so it never misleads."""
    return (
        '<div class="program"><button type="button" class="copy" hidden>Copy</button>'
        f"<pre><code>{escape(text)}</code></pre></div>"
    )


def mismatch_body(m: Mismatch, is_output: bool) -> str:
    parts = [f'<h4 class="check">{escape(m.check)}: {escape(m.message)}</h4>']
    if m.explanation:
        parts.append(
            f'<p class="diagnosis"><span class="code">{escape(m.diagnosis)}</span> {escape(m.explanation)}</p>'
        )
    if m.hint:
        parts.append(f'<p class="hint">{escape(m.hint)}</p>')
    if m.index is not None:
        where = heatmap.where(m.check, m.index)
        parts.append(
            f"<p>worst element {escape(where)}: expected {m.worst_expected!r}, actual {m.worst_actual!r}</p>"
        )
    if m.max_abs is not None and m.max_rel is not None:
        parts.append(f"<p>max abs error {m.max_abs:.3g}, max rel error {m.max_rel:.3g}</p>")
    maps = _arrays(m)
    if maps is not None:
        parts.append(heat_maps(m, *maps, is_output=is_output))
    return f'<div class="mismatch" data-check="{escape(m.check)}">{"".join(parts)}</div>'


def _arrays(m: Mismatch) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
    """The failed check's expected and actual arrays, when it has both, of one shape."""
    if m.expected is None or m.actual is None:
        return None
    expected = np.asarray(m.expected, dtype=np.float64)
    actual = np.asarray(m.actual, dtype=np.float64)
    return (expected, actual) if expected.shape == actual.shape and expected.size else None


def heat_maps(
    m: Mismatch, expected: NDArray[np.float64], actual: NDArray[np.float64], is_output: bool = False
) -> str:
    """Expected, actual and their difference side by side, on one symmetric colour scale."""
    with np.errstate(invalid="ignore", over="ignore"):
        diff = actual - expected
    stacked = np.concatenate([expected.ravel(), actual.ravel(), diff.ravel()])
    finite = np.abs(stacked[np.isfinite(stacked)])
    scale = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    worst = _worst(m, diff)
    lay = heatmap.layout(expected.shape, worst)
    source = "the reference" if is_output else "jax.vjp"
    figures = "".join(
        f"<figure><figcaption>{caption}</figcaption>"
        f"{heatmap.heatmap(values, lay, role, m.check, scale, worst)}</figure>"
        for role, caption, values in (
            ("expected", f"expected ({source})", expected),
            ("actual", "actual (yours)", actual),
            ("difference", "difference (actual &minus; expected)", diff),
        )
    )
    legend = (
        f"one colour scale for the three maps: blue negative, red positive, white 0; dark grey NaN or inf. "
        f"Outlined: the worst element {escape(heatmap.where(m.check, worst))}. {escape(lay.note)}. "
        "Hover over a cell for its exact value."
    )
    return (
        f'<div class="gradient" data-check="{escape(m.check)}"><div class="maps">{figures}</div>'
        f'{heatmap.colour_bar(scale)}<p class="scale">{legend}</p></div>'
    )


def _worst(m: Mismatch, diff: NDArray[np.float64]) -> tuple[int, ...]:
    """The mismatch's worst element, or else the largest difference (NaN counted as largest)."""
    if m.index is not None and len(m.index) == diff.ndim:
        return tuple(m.index)
    if diff.size == 0:
        return (0,) * diff.ndim
    size = np.where(np.isnan(diff), np.inf, np.abs(diff))
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(size)), diff.shape))


# ---- the culprit: the layer's own lines, each marked (issue 20) ------------------------------------------

MARKS = {"right": "right", "culprit": "culprit \u25b6", "unmatched": "no match"}
"""The text each line carries besides its colour, so that the marks read without colour (and in print)."""

_RANK = {"culprit": 2, "right": 1, "unmatched": 0}
MAX_NODES = 4
"""Nodes named per line: a line run once per time step matches one node per step."""


@dataclass(frozen=True)
class Shown:
    """One source line as the listing shows it: every run of it folded into one mark and its nodes."""

    file: str
    line: int
    source: str
    mark: str
    variables: tuple[str, ...]
    nodes: tuple[str, ...]
    runs: int


def located_body(located: Located) -> str:
    """Where the layer's own code goes wrong: the culprit's line, what it should have been and the lines
    before it that were right; or the sentence saying why no line is named; then every traced line."""
    culprit = located.culprit
    named = "the first wrong line of your code" if culprit is not None else "no line named"
    parts = [f'<h4 class="located">Where it goes wrong: {named}</h4>']
    if culprit is not None:
        parts.append(_culprit_summary(culprit))
    if located.note:
        parts.append(f'<p class="culprit-note">{escape(located.note)}</p>')
    if culprit is None and not located.lines and not located.note:
        return ""
    parts += [_function_listing(title, shown) for title, shown in _grouped(located)]
    if located.lines:
        parts.append(
            '<p class="scale">each line your forward and backward ran, in the order of the file: '
            "<b>right</b> when the array it assigned is a node of the book's graph (named beside it), "
            "<b>culprit</b> for the first wrong line, <b>no match</b> when it matches no node.</p>"
        )
    return f'<div class="culprit" data-found="{str(culprit is not None).lower()}">{"".join(parts)}</div>'


def _culprit_summary(c: Culprit) -> str:
    should = c.node if c.node.startswith("the ") else f"the node {c.node}"
    name = c.variable or "the array it assigned"
    lines = [
        f'line {c.line} of {escape(Path(c.file).name)}: <span class="code">{escape(c.source.strip())}</span>',
        f"{escape(name)} should be {escape(should)}{escape(_values(c))}",
    ]
    if c.right:
        verb = "matches" if len(c.right) == 1 else "match"
        lines.append(f"the lines before it are right: {escape(', '.join(c.right))} {verb}")
    body = "<br>".join(lines)
    return (
        f'<p class="culprit-summary" data-file="{escape(c.file)}" data-line="{c.line}">'
        f"<b>culprit:</b> {body}</p>"
    )


def _values(c: Culprit) -> str:
    """``: worst element dvar[1]: expected 0.5, got -0.5``, from the two arrays, if the search kept them."""
    if c.expected is None or c.actual is None:
        return ""
    expected = np.asarray(c.expected, dtype=np.float64)
    actual = np.asarray(c.actual, dtype=np.float64)
    if expected.shape != actual.shape:
        return f": expected shape {expected.shape}, got shape {actual.shape}"
    if expected.size == 0:
        return ""
    with np.errstate(invalid="ignore", over="ignore"):
        size = np.abs(actual - expected)
    size = np.where(np.isnan(size), np.inf, size)
    index = tuple(int(i) for i in np.unravel_index(int(np.argmax(size)), expected.shape))
    where = heatmap.where(c.variable or "value", index)
    return f": worst element {where}: expected {float(expected[index])!r}, got {float(actual[index])!r}"


def _fold(located: Located) -> list[Shown]:
    """One entry per (file, line): a line run several times (a loop, a time step) shows its strongest mark
    (the culprit, else right if any run matched) and the nodes its runs matched."""
    culprit = located.culprit
    runs: dict[tuple[str, int], list[Line]] = {}
    for line in located.lines:
        runs.setdefault((line.file, line.line), []).append(line)
    shown = []
    for (file, number), each in runs.items():
        is_culprit = culprit is not None and (culprit.file, culprit.line) == (file, number)
        mark = "culprit" if is_culprit else max((x.mark for x in each), key=lambda m: _RANK.get(m, 0))
        shown.append(
            Shown(
                file=file,
                line=number,
                source=_as_written(file, number, each[0].source),
                mark=mark,
                variables=tuple(dict.fromkeys(x.variable for x in each if x.variable)),
                nodes=tuple(dict.fromkeys(x.node for x in each if x.node and x.mark == "right")),
                runs=len(each),
            )
        )
    return shown


def _as_written(file: str, number: int, source: str) -> str:
    """The line with its indentation, from the file when it still holds that very line."""
    written = linecache.getline(file, number).rstrip("\n")
    return written if written.strip() == source.strip() else source


def _grouped(located: Located) -> list[tuple[str, list[Shown]]]:
    """The traced lines per function, each function's in the order of its file; files in the order the
    trace first met them, functions in the order of their file."""
    files = list(dict.fromkeys(line.file for line in located.lines))
    groups: dict[tuple[int, int, str], list[Shown]] = {}
    for shown in _fold(located):
        start, name = _function_of(shown.file, shown.line)
        groups.setdefault((files.index(shown.file), start, name), []).append(shown)
    return [(name, sorted(lines, key=lambda s: s.line)) for (_, _, name), lines in sorted(groups.items())]


def _function_of(file: str, line: int) -> tuple[int, str]:
    """The innermost function around ``line`` of ``file`` (its first line and ``Class.method``), read from
    the source that ``linecache`` holds (a notebook cell's too); the file's name when it cannot be read."""
    best = (0, f"{Path(file).name}")
    for start, end, name in _functions(file):
        if start <= line <= end and start >= best[0]:
            best = (start, f"{name} ({Path(file).name})")
    return best


def _functions(file: str) -> list[tuple[int, int, str]]:
    try:
        tree = ast.parse("".join(linecache.getlines(file)))
    except (SyntaxError, ValueError):
        return []
    found: list[tuple[int, int, str]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    start = min([child.lineno] + [d.lineno for d in child.decorator_list])
                    found.append((start, child.end_lineno or child.lineno, name))
                visit(child, f"{name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def _function_listing(title: str, lines: list[Shown]) -> str:
    """One function's lines, indented as in the file less the function body's own indent."""
    indents = [len(s.source) - len(s.source.lstrip()) for s in lines if s.source.strip()]
    cut = min(indents, default=0)
    rows = []
    for i, s in enumerate(lines):
        if i and s.line > lines[i - 1].line + 1:
            rows.append(
                '<tr class="gap"><td class="num"></td><td></td><td class="src">\u22ee</td><td></td></tr>'
            )
        rows.append(_line_row(s, cut))
    return (
        f'<p class="function">{escape(title)}</p><table class="trace"><tbody>{"".join(rows)}</tbody></table>'
    )


def _line_row(s: Shown, cut: int = 0) -> str:
    if s.mark == "culprit":
        node = "the first wrong line"
    elif s.nodes:
        more = f", \u2026 ({len(s.nodes)} nodes)" if len(s.nodes) > MAX_NODES else ""
        node = "= " + ", ".join(s.nodes[:MAX_NODES]) + more
    else:
        node = ""
    runs = f"; ran {s.runs} times" if s.runs > 1 else ""
    title = f"line {s.line} of {s.file}{runs}"
    variables = ", ".join(s.variables)
    return (
        f'<tr class="line {escape(s.mark)}" data-mark="{escape(s.mark)}" data-line="{s.line}" '
        f'data-variable="{escape(variables)}" title="{escape(title)}">'
        f'<td class="num">{s.line}</td><td class="mark">{escape(MARKS.get(s.mark, s.mark))}</td>'
        f'<td class="src">{escape(s.source[cut:].rstrip())}</td><td class="node">{escape(node)}</td></tr>'
    )
