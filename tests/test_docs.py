"""Cheap checks of the documentation sources (the full, executed build is `sphinx-build -W`, see CONTRIBUTING.md)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts)


def _front_matter(text: str) -> str:
    match = re.match(r"---\n(.*?)\n---\n", text, re.S)
    return match.group(1) if match else ""


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_code_cells_only_in_notebook_pages(page: Path) -> None:
    text = page.read_text()
    if "{code-cell}" in text:
        front = _front_matter(text)
        assert "kernelspec" in front and "python3" in front, (
            f"{page.name} has code cells but no kernelspec front matter: they would not be executed"
        )


def test_conf_executes_notebooks_and_fails_on_errors() -> None:
    conf = (DOCS / "conf.py").read_text()
    assert '"myst_nb"' in conf
    assert "nb_execution_raise_on_error = True" in conf
    assert 'os.environ.get("XSFM_DOCS_EXECUTION", "force")' in conf


def test_no_unmeasured_claims() -> None:
    for page in PAGES:
        text = page.read_text().lower()
        assert "gives calibrated" not in text, f"{page.name} claims calibrated ensembles"
        assert "50 euler steps by default" not in text, (
            f"{page.name}: the card's sampler is heun 11"
        )
