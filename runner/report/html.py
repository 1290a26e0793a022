"""One self-contained HTML page: images embedded as data URIs, the style inline, no script, no
link out of the file but to its neighbours (a sweep's page links its jobs' pages). It opens
from disk, mailed or archived, with no server and no network."""

import base64
import html
from pathlib import Path

from runner.rundir import replace_file

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .5em 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre, code { font: 12px/1.4 ui-monospace, monospace; background: #f6f6f6; }
pre { padding: .6em; overflow-x: auto; white-space: pre-wrap; }
img { max-width: 100%; border: 1px solid #eee; }
.bad { color: #a00; font-weight: bold; } .ok { color: #070; }
"""


class Page:
    """A page built part by part; `text()` is the finished HTML."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.parts: list[str] = [f"<h1>{esc(title)}</h1>"]

    def heading(self, text: str) -> None:
        self.parts.append(f"<h2>{esc(text)}</h2>")

    def paragraph(self, text: str, css: str = "") -> None:
        cls = f' class="{css}"' if css else ""
        self.parts.append(f"<p{cls}>{esc(text)}</p>")

    def raw(self, markup: str) -> None:
        """Markup built by this module's helpers (everything in it already escaped)."""
        self.parts.append(markup)

    def code(self, text: str) -> None:
        self.parts.append(f"<pre>{esc(text)}</pre>")

    def image(self, path: Path, alt: str) -> None:
        """The PNG at `path`, embedded; nothing when it does not exist."""
        if path.is_file():
            data = base64.b64encode(path.read_bytes()).decode()
            self.parts.append(f'<p><img src="data:image/png;base64,{data}" alt="{esc(alt)}"></p>')

    def table(
        self, header: list[str], rows: list[list[str]], links: dict[int, str] | None = None
    ) -> None:
        """A table; `links`: row index → a relative href for that row's first cell."""
        head = "".join(f"<th>{esc(h)}</th>" for h in header)
        body = []
        for i, row in enumerate(rows):
            cells = []
            for j, cell in enumerate(row):
                text = esc(cell)
                if j == 0 and links and i in links:
                    text = f'<a href="{esc(links[i])}">{text}</a>'
                css = ' class="num"' if _numeric(cell) else ""
                cells.append(f"<td{css}>{text}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        self.parts.append(f"<table><tr>{head}</tr>{''.join(body)}</table>")

    def text(self) -> str:
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{esc(self.title)}</title><style>{STYLE}</style></head>"
            f"<body>{''.join(self.parts)}</body></html>\n"
        )

    def write(self, path: Path) -> Path:
        return replace_file(path, lambda f: f.write(self.text().encode("utf-8")))


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _numeric(cell: str) -> bool:
    head = cell.split(" ", 1)[0].replace(",", "").lstrip("[-")
    return bool(head) and head.replace(".", "", 1).replace("e", "", 1).lstrip("-").isdigit()
