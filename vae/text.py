"""Text one person typed (names, paths, file names, labels), made safe to show to everyone.

Streamlit renders Markdown in titles, captions and alerts, and plotly renders a few HTML tags
in labels: a typed `![x](https://...)` would make every classmate's browser fetch that URL and a
`[link](...)` would be live. `plain` removes invisible characters (controls, bidi overrides,
zero-width marks); `markdown_literal` also escapes what Markdown would act on, for the places
that only take Markdown; `html_literal` does the same for plotly.
"""

from __future__ import annotations

import html
import re
import unicodedata

# What Markdown (and Streamlit's extensions: :emoji:, :color[...], $maths$) acts on inside one line;
# a list or heading marker only counts at the start, handled in markdown_literal.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#!|~:$&])")


def plain(text: object, limit: int = 500) -> str:
    """`text` as a single line without control or format characters (Unicode Cc, Cf, Zl, Zp), at most `limit` long."""
    cleaned = "".join(" " if char in "\t\n\r" else char for char in str(text)
                      if char in "\t\n\r" or unicodedata.category(char) not in ("Cc", "Cf", "Zl", "Zp", "Co", "Cs"))
    cleaned = " ".join(cleaned.split())
    return cleaned if len(cleaned) <= limit else cleaned[:limit - 1] + "…"


def markdown_literal(text: object, limit: int = 2000) -> str:
    """`plain(text)` with every Markdown character escaped, so st.markdown/st.error show it as typed."""
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", plain(text, limit))
    if escaped[:1] in ("-", "+", "="):  # a list item or a heading underline at the start
        return "\\" + escaped
    return re.sub(r"^(\d+)([.)])", r"\1\\\2", escaped)  # "1. " would start a numbered list


def html_literal(text: object, limit: int = 200) -> str:
    """`plain(text)` with <, >, & and quotes escaped, for plotly labels (which honour a few HTML tags)."""
    return html.escape(plain(text, limit))


def public_dataset_name(name: str) -> str:
    """A data set's name as shown to everyone: `folder:PATH?...` becomes "image folder" and
    `upload:KEY` "uploaded pictures" (paths and keys stay private)."""
    base, colon, _ = str(name).partition(":")
    if colon and base == "folder":
        return "image folder"
    if colon and base == "upload":
        return "uploaded pictures"
    return plain(base, 64)


def label_name(label_names, label, missing: str | None = "–") -> str | None:
    """The name of class `label` (an int index into `label_names`, e.g. a data set's folder names),
    or `missing` when there are no names, no label (None or negative: unlabelled) or no such index.

    Returned as named, not escaped: wrap it in markdown_literal or html_literal where it is shown."""
    if label is None or label_names is None or len(label_names) == 0:
        return missing
    index = int(label)
    return label_names[index] if 0 <= index < len(label_names) else missing
