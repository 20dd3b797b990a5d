"""The Markdown report as one self-contained HTML file: images inlined, styles inline, no scripts.

``report.html`` is rendered from exactly the text of ``report.md`` (Python-Markdown with its
``tables``, ``fenced_code`` and ``md_in_html`` extensions, the last for the collapsible spec), so
the two never disagree. Each table sits in a box that scrolls sideways, so a wide one (the
trials, one column per hyperparameter) never pushes the page past the window's edge. Every
image the Markdown links with a relative path inside the report folder is read and embedded as
a base64 ``data:`` URI; the page loads nothing from anywhere, so it opens offline and can be
mailed as one file.
The output is a pure function of the Markdown and the image bytes.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Callable
from pathlib import Path

__all__ = ["HTML_NAME", "TABLE_BOX", "render_html"]

HTML_NAME = "report.html"

_MIME = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
_IMG_SRC = re.compile(r'(<img\b[^>]*?\bsrc=")([^"]+)(")')
#: The class of the box around every table.
TABLE_BOX = "table-scroll"

# Plain, print-friendly styling; system fonts only (nothing to fetch).
_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       max-width: 72rem; margin: 2rem auto; padding: 0 1.5rem; color: #1a1a1a;
       line-height: 1.45; }
h1 { border-bottom: 2px solid #0173b2; padding-bottom: .3rem; }
h2 { margin-top: 2.2rem; border-bottom: 1px solid #ccc; padding-bottom: .2rem; }
.table-scroll { overflow-x: auto; max-width: 100%; margin: .8rem 0; }
table { border-collapse: collapse; font-size: .9rem; }
th, td { border: 1px solid #d0d0d0; padding: .25rem .55rem; }
th { background: #f0f4f8; }
tbody tr:nth-child(even) { background: #fafafa; }
td, th { font-variant-numeric: tabular-nums; }
td[style*="right"] { white-space: nowrap; }  /* a number never breaks before its unit */
img { max-width: 100%; height: auto; border: 1px solid #eee; }
code { background: #f4f4f4; padding: 0 .2rem; border-radius: 3px; }
pre { background: #f4f4f4; padding: .8rem; overflow-x: auto; font-size: .85rem; }
details { margin: .8rem 0; }
summary { cursor: pointer; }
blockquote { border-left: 4px solid #de8f05; margin: 1rem 0; padding: .3rem 1rem;
             background: #fff8ec; }
"""


def _inline(match: re.Match[str], root: Path) -> str:
    src = html.unescape(match[2])
    if ":" in src.split("/", 1)[0]:  # data:, http:, file: ... left alone
        return match[0]
    path = (root / src).resolve()
    mime = _MIME.get(path.suffix.lower())
    # Only files inside the report folder: a crafted link must not pull in other files.
    if mime is None or not path.is_file() or not path.is_relative_to(root.resolve()):
        return match[0]
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"{match[1]}data:{mime};base64,{data}{match[3]}"


def render_html(
    markdown_text: str,
    root: str | Path,
    *,
    title: str,
    scrub: Callable[[str], str] | None = None,
) -> str:
    """A standalone HTML page from report Markdown, images under ``root`` embedded.

    Args:
        markdown_text: the report's Markdown (already free of passwords).
        root: the folder relative image links are resolved against (the report folder).
        title: the page title (escaped here).
        scrub: applied to the page's text before the images are embedded (the report masks
            passwords with it; scanning the megabytes of base64 instead took longer than
            writing the page).

    Returns:
        The HTML document as text.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     page = render_html("# R\\n\\n| a |\\n| ---: |\\n| 1 |\\n", d, title="R")
        >>> "<td" in page and "<script" not in page
        True
        >>> '<div class="table-scroll"><table>' in page
        True
    """
    import markdown

    body = markdown.markdown(
        markdown_text, extensions=["tables", "fenced_code", "md_in_html"], output_format="html"
    )
    # Markdown writes <table> and </table> only for its own tables (text is escaped).
    body = body.replace("<table>", f'<div class="{TABLE_BOX}"><table>')
    body = body.replace("</table>", "</table></div>")
    page = (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )
    if scrub is not None:
        page = scrub(page)
    root = Path(root)
    return _IMG_SRC.sub(lambda m: _inline(m, root), page)
