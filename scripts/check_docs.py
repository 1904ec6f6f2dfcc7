"""The docs build's notebook processing, as a check: what `nbdev_docs` does before it hands the notebooks to Quarto.

For every notebook of `nbs/` this runs nbdev's own docs processing, exactly as `nbdev_proc_nbs` does it
(`execnb.nbio.read_nb`, nbdev's `FilterDefaults` processors, `execnb.nbio.write_nb`, one fresh spawned process
per notebook), without `nbdev_proc_nbs` itself, which first tries to install Quarto with sudo. The processing
executes every exported cell and every cell holding an import, in order, in a fresh kernel; a cell that fails
there, or a notebook execnb cannot write back (ipywidgets link state, whose `source` key it takes for cell source),
breaks the docs site. The check fails on those, and on the cells nbdev warns about ("Found cells containing
imports and other code"): cells it executes that mix imports with other code, which run (and may fail, or take
minutes) in the docs build although they are demos. It lists every finding as notebook, cell number (as in
Jupyter, from 0) and the cell's first line, and exits 1 if there is any.

usage: python scripts/check_docs.py [NOTEBOOK ...] [--out DIR] [--workers N]
       (default: all notebooks nbdev finds in nbs/; processed notebooks go to a temporary folder, or DIR)
"""
import argparse, json, multiprocessing, os, sys, tempfile, time, warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

def _first_line(source: str) -> str:
    "The first line of a cell that is not an nbdev directive."
    lines = [l for l in source.splitlines() if l.strip() and not l.startswith("#|")]
    return (lines[0] if lines else source.strip().splitlines()[0] if source.strip() else "")[:100]

def _list_sources(value, path="metadata"):
    "Where execnb's writer would fail: keys named `source` whose value is not a string, outside cells."
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "source" and not isinstance(v, str): yield f"{path}.{k}"
            yield from _list_sources(v, f"{path}.{k}" if len(path) < 120 else path)
    elif isinstance(value, list):
        for v in value: yield from _list_sources(v, path)

def process(path: str, out: str) -> dict:
    "nbdev's docs processing of one notebook (run in a fresh process): its errors, its mixed import cells, and the time taken."
    os.chdir(REPO)
    os.environ["IN_TEST"] = "1"  # as nbdev's serve_drv sets it
    t0 = time.perf_counter()
    from execnb.nbio import read_nb, write_nb
    from nbdev.processors import FilterDefaults, _do_eval
    nb = read_nb(path)
    originals = [(c.source, c.cell_type) for c in nb.cells]
    proc = FilterDefaults().nb_proc(nb)
    for i, cell in enumerate(nb.cells): cell.orig_idx_ = i  # nbdev renumbers cells as processors drop some
    errors, mixed = [], []
    def where(source: str) -> str:
        idx = next((i for i, (s, t) in enumerate(originals) if t == "code" and source.strip() and source.strip() in s), "?")
        return f"cell {idx}: {_first_line(source)}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try: proc.process()
        except Exception as e:  # exec_show_docs raises "Error in cell N:\n<source>" from the cell's own exception
            cause = e.__cause__ or e
            source = str(e).split(":\n", 1)[1] if ":\n" in str(e) else ""
            errors.append(f"{where(source)}\n      {type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}")
            failed_at = next((getattr(c, "orig_idx_", None) for c in nb.cells if c.source == source), None)
            if failed_at is not None and nb.has_docs_:  # cells the processing did not reach: nbdev would run these too
                for c in nb.cells:
                    if getattr(c, "orig_idx_", -1) > failed_at and c.cell_type == "code": _do_eval(c)
    for w in caught:
        text = str(w.message)
        if text.startswith("Found cells containing imports and other code"):
            mixed.append(where(text.split("---\n", 1)[1].rsplit("\n---", 1)[0] if "---\n" in text else ""))
    bad = sorted(set(_list_sources(nb.get("metadata", {}))))
    try: write_nb(nb, Path(out) / Path(path).name)
    except Exception as e:
        errors.append(f"writing the processed notebook: {type(e).__name__}: {e}"
                      + (f"\n      non-text `source` keys (ipywidgets jslink/jsdlink state) at {bad[:3]}" if bad else ""))
    return dict(path=path, errors=errors, mixed=sorted(set(mixed), key=lambda s: int(s.split()[1].rstrip(":")) if s.split()[1].rstrip(":").isdigit() else -1),
                seconds=time.perf_counter() - t0)

def notebooks() -> list[Path]:
    "The notebooks nbdev's docs build processes."
    os.chdir(REPO)
    from nbdev.config import get_config
    from nbdev.doclinks import nbglob
    return sorted(Path(p) for p in nbglob(get_config().nbs_path, file_glob="*.ipynb"))

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", help="notebooks to check (default: all)")
    ap.add_argument("--out", help="folder for the processed notebooks (default: a temporary one)")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    paths = [Path(p).resolve() for p in args.paths] or notebooks()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or tmp); out.mkdir(parents=True, exist_ok=True)
        ctx = multiprocessing.get_context("spawn")  # nbdev_proc_nbs spawns its workers too
        with ProcessPoolExecutor(args.workers, mp_context=ctx, max_tasks_per_child=1) as ex:
            results = list(ex.map(process, map(str, paths), [str(out)] * len(paths)))
    failed = 0
    for r in results:
        name = Path(r["path"]).relative_to(REPO) if Path(r["path"]).is_relative_to(REPO) else r["path"]
        status = "ok" if not (r["errors"] or r["mixed"]) else "FAILED"
        print(f"{status:6s} {name} ({r['seconds']:.0f} s)")
        for e in r["errors"]: print(f"  error in the docs build: {e}")
        for m in r["mixed"]: print(f"  imports mixed with other code (put imports in a cell of their own): {m}")
        failed += bool(r["errors"] or r["mixed"])
    print(f"docs processing of {len(results)} notebooks: {failed} failed, {time.perf_counter() - t0:.0f} s")
    return 1 if failed else 0

if __name__ == "__main__":
    sys.exit(main())
