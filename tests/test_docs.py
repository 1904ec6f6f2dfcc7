"""The front page and the docs build: README.md says what nbs/index.ipynb says, the index lists every notebook, and the
docs-processing check (scripts/check_docs.py, run by scripts/test.sh) fails on the breaks it exists to catch."""
import importlib.util, json, re, subprocess, sys
from pathlib import Path
import pytest

REPO = Path(__file__).resolve().parents[1]

def _load(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod

readme = _load("readme")

def words(text: str) -> list[str]:
    "The words of a markdown text, ignoring line wrapping, quotes, escapes and table padding (which Quarto changes), and nbs/ in links."
    return re.findall(r"[A-Za-z0-9]+", text.replace("nbs/", ""))

def test_readme_is_what_the_index_notebook_makes():
    index = json.loads((REPO / "nbs" / "index.ipynb").read_text(encoding="utf-8"))
    expected, found = readme.render(index), (REPO / "README.md").read_text(encoding="utf-8")
    assert found.startswith("# dualdistill\n") and readme.WARNING in found.split("\n\n", 2)[1]
    a, b = words(expected), words(found)
    if a != b:
        i = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        pytest.fail(f"README.md differs from nbs/index.ipynb at word {i}: index has {' '.join(a[i:i + 12])!r}, "
                    f"README {' '.join(b[i:i + 12])!r}; run `python scripts/readme.py`")

def test_render_follows_nbdev_readme_layout():
    nb = {"cells": [{"cell_type": "markdown", "source": "# demo\n\n> a description"},
                    {"cell_type": "markdown", "source": "See ![a map](images/map.png), [the maps](09_maps.ipynb) and [nbdev](https://nbdev.fast.ai)."},
                    {"cell_type": "code", "source": "#| hide\nimport secret", "outputs": []},
                    {"cell_type": "code", "source": "1 + 1", "outputs": [{"output_type": "execute_result", "data": {"text/plain": ["2"]}}]}]}
    assert readme.render(nb) == ("# demo\n\n" + readme.WARNING + "\n\nSee ![a map](nbs/images/map.png), [the maps](nbs/09_maps.ipynb) "
                                 "and [nbdev](https://nbdev.fast.ai).\n\n``` python\n1 + 1\n```\n\n    2\n")

def test_index_links_every_notebook_and_only_existing_ones():
    text = "".join(c for cell in json.loads((REPO / "nbs" / "index.ipynb").read_text())["cells"] for c in cell["source"])
    linked = set(re.findall(r"\]\(([\w.-]+\.ipynb)\)", text))
    present = {p.name for p in (REPO / "nbs").glob("*.ipynb") if p.name != "index.ipynb" and not p.name.startswith(("_", "."))}
    assert not present - linked, f"notebooks the index does not list: {sorted(present - linked)}"
    assert not linked - present, f"the index links notebooks that do not exist: {sorted(linked - present)}"

def _notebook(cells, metadata=None):
    return {"cells": [dict(cell_type="code", execution_count=None, id=f"c{i}", metadata={}, outputs=[], source=s) for i, s in enumerate(cells)],
            "metadata": metadata or {}, "nbformat": 4, "nbformat_minor": 5}

def test_docs_check_fails_on_a_cell_error_a_mixed_import_cell_and_link_state(tmp_path):
    link = {"application/vnd.jupyter.widget-state+json": {"version_major": 2, "version_minor": 0, "state": {"ab12": {
        "model_name": "LinkModel", "model_module": "@jupyter-widgets/controls", "model_module_version": "2.0.0",
        "state": {"source": ["IPY_MODEL_x", "value"], "target": ["IPY_MODEL_y", "opacity"]}}}}}
    (tmp_path / "broken.ipynb").write_text(json.dumps(_notebook(["#| default_exp nothing", "#| export\ndef f(): return 1",
                                                                "x = 3", "import math\nprint(x + math.pi)"])))
    (tmp_path / "links.ipynb").write_text(json.dumps(_notebook(["#| export\ndef g(): return 2", "import math"], {"widgets": link})))
    (tmp_path / "fine.ipynb").write_text(json.dumps(_notebook(["#| export\ndef h(): return 3", "import math", "math.pi"])))
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "check_docs.py"), *(str(tmp_path / f) for f in ("broken.ipynb", "links.ipynb", "fine.ipynb"))],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stdout + r.stderr
    out = r.stdout
    assert "FAILED " + str(tmp_path / "broken.ipynb") in out and "cell 3: import math" in out and "NameError: name 'x' is not defined" in out
    assert "imports mixed with other code (put imports in a cell of their own): cell 3: import math" in out
    assert "'list' object has no attribute 'splitlines'" in out and "state.ab12.state.source" in out
    assert "ok     " + str(tmp_path / "fine.ipynb") in out and "3 notebooks: 2 failed" in out

def test_notebooks_import_only_modules_of_earlier_notebooks():
    "The reading order: a notebook may use the modules that notebooks before it export, never a later one's."
    books = sorted(p for p in (REPO / "nbs").glob("[0-9]*.ipynb"))
    cells = {p: [("".join(c["source"]) if isinstance(c["source"], list) else c["source"]) for c in json.loads(p.read_text())["cells"]
                 if c["cell_type"] == "code"] for p in books}
    module_of = {}
    for p, srcs in cells.items():
        exp = next((re.search(r"#\|\s*default_exp\s+(\S+)", s) for s in srcs if "default_exp" in s), None)
        if exp: module_of[exp.group(1)] = p.name
    late = []
    for p, srcs in cells.items():
        for s in srcs:
            for m in re.findall(r"(?:from|import)\s+(?:dualdistill\.|\.)([a-z_]+)", s):
                if m in module_of and module_of[m] > p.name: late.append(f"{p.name} imports dualdistill.{m} ({module_of[m]})")
    assert not late, late

def test_notebooks_name_a_kernel_jupyterlab_has():
    "Every notebook opens in JupyterLab without a 'Select Kernel' dialog: it names the `python3` kernel, which this environment provides."
    from jupyter_client.kernelspec import KernelSpecManager
    specs = KernelSpecManager().find_kernel_specs()
    books = sorted((REPO / "nbs").glob("*.ipynb"))
    names = {p.name: json.loads(p.read_text())["metadata"].get("kernelspec", {}).get("name") for p in books}
    assert len(books) > 10 and set(names.values()) == {"python3"}, names
    assert "python3" in specs
