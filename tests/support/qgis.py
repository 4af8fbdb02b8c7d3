"""Real QGIS for the tests: a PyQGIS script run by Debian's ``/usr/bin/python3`` in a subprocess.

PyQGIS comes from Debian (``python3-qgis qgis-providers``), built for the system Python, so it
runs outside the venv: PYTHONPATH, PYTHONHOME and VIRTUAL_ENV are unset, Qt draws offscreen, and
HOME (the QGIS profile) and XDG_RUNTIME_DIR are fresh folders of the test.

The caller's script defines ``main(args: dict) -> dict``; the harness adds the rest:

    result = run_pyqgis(SCRIPT, {"path": str(gpkg)}, tmp_path)

It creates ``QgsApplication([], False)``, calls ``initQgis()``, calls ``main`` (so every layer
is a local of ``main`` and gone when it returns: layers alive at ``exitQgis()`` crash the
interpreter at exit), adds ``qgis_messages`` (every message QGIS logged meanwhile, as
``[level, tag, text]``, level 0 info, 1 warning, 2 critical) and prints the result as one
marked JSON line, which the harness parses. An exception in ``main`` fails the run with its
traceback. The process runs in its own session; on timeout the harness kills that process
group, by its id, and nothing else.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

DEBIAN_PYTHON = Path("/usr/bin/python3")
MISSING_REASON = "Debian python3-qgis qgis-providers not installed: make test installs them as root"
#: Guards against a hung QGIS; it fails the test, it is not a measurement.
TIMEOUT_S = 300.0
_MARKER = "SITEWATCH-QGIS-RESULT "
#: Put before every script: what the tests read off a layer's style.
PYQGIS_HELPERS = """
from qgis.core import QgsRenderContext


def rgba(color):
    return [color.red(), color.green(), color.blue(), color.alpha()]


def renderer_summary(layer):
    \"\"\"A vector layer's renderer: type, classified field, categories, every colour.\"\"\"
    renderer = layer.renderer()
    colors = set()
    for symbol in renderer.symbols(QgsRenderContext()):
        for symbol_layer in symbol.symbolLayers():
            for color in (symbol_layer.color(), symbol_layer.strokeColor()):
                if color.isValid():
                    colors.add(tuple(rgba(color)))
    categories = [str(c.value()) for c in getattr(renderer, "categories", lambda: [])()]
    return {
        "renderer": renderer.type(),
        "attribute": getattr(renderer, "classAttribute", lambda: None)(),
        "categories": categories,
        "colors": sorted(colors),
    }

"""
_WRAPPER = """

def _sitewatch_run():
    import json as _json
    import sys as _sys
    import traceback as _traceback

    from qgis.core import Qgis as _Qgis, QgsApplication as _QgsApplication

    with open(_sys.argv[1], encoding="utf-8") as handle:
        args = _json.load(handle)
    app = _QgsApplication([], False)
    app.initQgis()
    messages = []

    def _log(text, tag, level):
        messages.append([int(level), tag, text])

    app.messageLog().messageReceived.connect(_log)
    failure = None
    result = None
    try:
        result = main(args)
        result["qgis_version"] = _Qgis.version()
        result["qgis_messages"] = messages
    except BaseException:
        failure = _traceback.format_exc()  # text only: no frame keeps a layer alive
    app.exitQgis()
    if failure is not None:
        _sys.stderr.write(failure)
        _sys.exit(1)
    print(MARKER + _json.dumps(result, sort_keys=True), flush=True)


_sitewatch_run()
""".replace("MARKER", repr(_MARKER))


class QgisError(RuntimeError):
    """The PyQGIS script failed, printed no result or timed out; the message ends with its
    output."""


def clean_env(workdir: Path) -> dict[str, str]:
    """The environment of a Debian-python QGIS process with its home in ``workdir``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV") and not k.startswith("QGIS_")
    }
    home, runtime = workdir / "home", workdir / "runtime"
    home.mkdir(parents=True, exist_ok=True)
    runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
    env.update(
        HOME=str(home),
        XDG_RUNTIME_DIR=str(runtime),
        QT_QPA_PLATFORM="offscreen",
        PYTHONNOUSERSITE="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


@functools.cache
def qgis_available() -> str | None:
    """None when PyQGIS can be imported by Debian's python, else the reason it cannot (for a
    ``pytest.skip``)."""
    if not (DEBIAN_PYTHON.is_file() and os.access(DEBIAN_PYTHON, os.X_OK)):
        return f"{MISSING_REASON} ({DEBIAN_PYTHON} is absent)"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PYTHONNOUSERSITE"] = "1"
    try:
        probe = subprocess.run(
            [str(DEBIAN_PYTHON), "-c", "import qgis.core"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"{MISSING_REASON} (importing qgis.core took over 60 s)"
    if probe.returncode != 0:
        last = probe.stderr.strip().splitlines()[-1:] or ["no output"]
        return f"{MISSING_REASON} ({DEBIAN_PYTHON} -c 'import qgis.core': {last[0]})"
    return None


def run_pyqgis(
    script: str, args: dict[str, Any], workdir: Path, timeout: float = TIMEOUT_S
) -> dict[str, Any]:
    """Run ``script`` (which defines ``main(args) -> dict``; ``PYQGIS_HELPERS`` comes before it)
    under real QGIS in ``workdir`` and return what ``main`` returned, plus ``qgis_version`` and
    ``qgis_messages``."""
    workdir.mkdir(parents=True, exist_ok=True)
    source, arguments = workdir / "pyqgis_script.py", workdir / "pyqgis_args.json"
    source.write_text(PYQGIS_HELPERS + script + _WRAPPER, encoding="utf-8")
    arguments.write_text(json.dumps(args), encoding="utf-8")
    process = subprocess.Popen(
        [str(DEBIAN_PYTHON), str(source), str(arguments)],
        cwd=workdir,
        env=clean_env(workdir),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: a timeout ends exactly that
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        _, stderr = process.communicate()
        raise QgisError(
            f"PyQGIS script {source} timed out after {timeout} s:\n{stderr[-4000:]}"
        ) from exc
    lines = [line for line in stdout.splitlines() if line.startswith(_MARKER)]
    if process.returncode != 0 or not lines:
        raise QgisError(
            f"PyQGIS script {source} exited with {process.returncode}:\n"
            f"{stdout[-2000:]}\n{stderr[-4000:]}"
        )
    result: dict[str, Any] = json.loads(lines[-1][len(_MARKER) :])
    return result
