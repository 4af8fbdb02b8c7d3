"""The notebooks in notebooks/: stored without outputs, and each runs from top to bottom on a
demo run, in a kernel started from this test's interpreter (the venv), so none can rot."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ipykernel.kernelspec
import nbformat
import pytest
from nbclient import NotebookClient
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: A cell appended to the executed copy: which Python the kernel runs.
PREFIX_PROBE = "import sys\nprint(sys.prefix)"
#: Figures yearly_comparison.ipynb writes with its default SITE and years.
YEARLY_FIGURES = (
    "demo-camp_series.png",
    "demo-camp_2016_2025_footprints.png",
    "demo-camp_2016_2025_coal.png",
)


def stored_problems(nb: Any) -> list[str]:
    """What a notebook carries that must not be committed: outputs, execution counts, execution
    timing and widget state (each names the cell)."""
    problems = ["notebook metadata: widget state"] if "widgets" in nb.metadata else []
    for i, cell in enumerate(nb.cells):
        if "execution" in cell.metadata:
            problems.append(f"cell {i}: execution timing in its metadata")
        if cell.cell_type != "code":
            continue
        if cell.outputs:
            problems.append(f"cell {i}: {len(cell.outputs)} output(s)")
        if cell.execution_count is not None:
            problems.append(f"cell {i}: execution_count {cell.execution_count}")
    return problems


def error_outputs(nb: Any) -> list[str]:
    """``ename: evalue`` of every error output of an executed notebook."""
    return [
        f"{out.ename}: {out.evalue}"
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if out.output_type == "error"
    ]


def stdout(cell: Any) -> str:
    """What a cell printed (nothing for a markdown cell)."""
    outputs = cell.get("outputs", [])
    return "".join(o.text for o in outputs if o.output_type == "stream" and o.name == "stdout")


# ---- stored state (fast) --------------------------------------------------------------------


def test_the_analyst_notebook_is_there() -> None:
    assert NOTEBOOK_DIR / "yearly_comparison.ipynb" in NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    assert any(cell.cell_type == "code" for cell in nb.cells)
    assert nb.metadata.kernelspec.name == "python3"
    problems = stored_problems(nb)
    assert problems == [], (
        f"{path.name} is stored with outputs: {problems}; clear them before committing "
        "(Jupyter: Edit > Clear Outputs of All Cells, then save)"
    )


def test_stored_problems_finds_outputs() -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("x")])
    assert stored_problems(nb) == []
    cell = nbformat.v4.new_code_cell("1 + 1", execution_count=3)
    cell.outputs = [
        nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=3)
    ]
    cell.metadata["execution"] = {"iopub.status.idle": "2025-01-01T00:00:00Z"}
    nb.cells.append(cell)
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}
    assert stored_problems(nb) == [
        "notebook metadata: widget state",
        "cell 1: execution timing in its metadata",
        "cell 1: 1 output(s)",
        "cell 1: execution_count 3",
    ]


# ---- execution on a demo run (slow) ---------------------------------------------------------


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo run (the whole pipeline, about 80 s) shared by this module's tests."""
    from pipeline.api import demo  # imported here: the fast tests need none of the pipeline

    work = tmp_path_factory.mktemp("demo")
    return demo(work / "runs" / "demo", cache_dir=work / ".sitewatch-cache").out_dir


@pytest.fixture(scope="module")
def jupyter_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Environment for kernels: a ``python3`` kernelspec that starts this interpreter, first on
    JUPYTER_PATH (so a user's or the system's own ``python3`` kernel cannot take its place), and
    Jupyter's and IPython's state in a temporary folder, not the home directory. Yields the
    folder."""
    home = tmp_path_factory.mktemp("jupyter")
    ipykernel.kernelspec.install(kernel_name="python3", prefix=str(home))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", str(home / "share" / "jupyter"))
        mp.setenv("JUPYTER_RUNTIME_DIR", str(home / "runtime"))
        mp.setenv("IPYTHONDIR", str(home / "ipython"))
        yield home


def execute(path: Path, run_dir: Path, figure_dir: Path) -> Any:
    """``path`` executed top to bottom with SITEWATCH_RUN_DIR and SITEWATCH_FIGURE_DIR set and
    ``PREFIX_PROBE`` appended; the working directory is notebooks/, as in Jupyter. A cell that
    raises stops it with ``CellExecutionError`` naming the cell."""
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PREFIX_PROBE))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SITEWATCH_RUN_DIR", str(run_dir))
        mp.setenv("SITEWATCH_FIGURE_DIR", str(figure_dir))
        client = NotebookClient(
            nb,
            kernel_name="python3",
            timeout=600,
            resources={"metadata": {"path": str(path.parent)}},
        )
        client.execute()
    return nb


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_runs_top_to_bottom(path: Path, demo_run: Path, jupyter_env: Path, tmp_path: Path) -> None:
    nb = execute(path, demo_run, tmp_path / "figures")
    assert error_outputs(nb) == []
    # The kernel ran this venv's interpreter, not some other python3 on the machine.
    assert stdout(nb.cells[-1]).strip() == sys.prefix


@pytest.mark.slow
def test_yearly_comparison_figures_and_provenance(
    demo_run: Path, jupyter_env: Path, tmp_path: Path
) -> None:
    path = NOTEBOOK_DIR / "yearly_comparison.ipynb"
    first = execute(path, demo_run, tmp_path / "first")
    for name in YEARLY_FIGURES:
        png = tmp_path / "first" / name
        assert png.read_bytes().startswith(PNG_SIGNATURE), png
        with Image.open(png) as image:
            assert image.format == "PNG"
            assert min(image.size) >= 300, image.size
            darkest, lightest = image.convert("L").getextrema()
            assert darkest < lightest, "a blank canvas"
    # The provenance section quotes the run's config hash from its manifest.
    manifest = json.loads((demo_run / "manifest.json").read_text())
    printed = "".join(stdout(cell) for cell in first.cells)
    assert f"config hash (SHA-256): {manifest['config_hash']}" in printed
    # Run again: the same figures, byte for byte (no dates or versions in the PNGs).
    execute(path, demo_run, tmp_path / "second")
    for name in YEARLY_FIGURES:
        assert (tmp_path / "first" / name).read_bytes() == (tmp_path / "second" / name).read_bytes()
