"""Every page of the app, declared once: app.py's navigation and every link or jump between pages use these.

A page is named by its object (`pages.GENERATE.link("Open Generate")`, `pages.COMPARE.switch()`),
never by its file's path, so renaming a page file is a change here only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

VIEWS = Path(__file__).resolve().parent / "views"  # absolute: the same page whichever script is running


@dataclass(frozen=True)
class AppPage:
    file: str  # in views/
    title: str
    icon: str
    default: bool = False

    def page(self) -> st.Page:
        """A new st.Page for this run. Not one object shared by all sessions: st.navigation marks on
        the object itself which page it is about to run, so two sessions sharing it would race."""
        return st.Page(VIEWS / self.file, title=self.title, icon=self.icon, default=self.default)

    def link(self, label: str, icon: str | None = None) -> None:
        """A link to this page (with the page's own icon unless another is given)."""
        st.page_link(self.page(), label=label, icon=icon)

    def switch(self) -> None:
        """Go to this page now (ends this run)."""
        st.switch_page(self.page())


HOME = AppPage("home.py", "Home", "🏠", default=True)
TRAIN = AppPage("train.py", "Train", "🏋️")
LOSS_CURVES = AppPage("loss_curves.py", "Loss curves", "📉")
RECONSTRUCTIONS = AppPage("reconstructions.py", "Reconstructions", "🔁")
LATENT_MAP = AppPage("latent_map.py", "Latent map", "🗺️")
GENERATE = AppPage("generate.py", "Generate", "🎛️")
UPLOAD = AppPage("upload.py", "Upload & draw", "✏️")
EXPLAIN = AppPage("explain.py", "Explain", "🔬")
COMPARE = AppPage("compare.py", "Compare", "⚖️")
ALL = (HOME, TRAIN, LOSS_CURVES, RECONSTRUCTIONS, LATENT_MAP, GENERATE, UPLOAD, EXPLAIN, COMPARE)


def navigation() -> st.Page:
    """The app's navigation (every page, in the sidebar's order); returns the page to run."""
    return st.navigation([app_page.page() for app_page in ALL])
