"""Keep in a notebook's saved widget state only the widgets its outputs show, and what they reference.

A kernel's widget state holds every widget it ever made, displayed or not (leafmap's hidden layer managers, demo
widgets, ...), and executing a notebook with nbconvert saves all of them. A static page can only show the widgets
of its outputs: this drops the rest, keeping each output's widget tree (models reached through `IPY_MODEL_`
references, in any nested list or dict of their state). Links made with `jslink`/`jsdlink` are not part of a tree
and are dropped too; they could not be saved anyway (execnb, nbdev's notebook writer, fails on their `source` key);
`dualdistill.maps.BrowserLink` is the link that is kept, as a child of the tree.

usage: python scripts/prune_widget_state.py NOTEBOOK.ipynb [...]   (rewrites each notebook in place, prints what it dropped)
"""
import json, sys
from pathlib import Path

MIME_STATE, MIME_VIEW = "application/vnd.jupyter.widget-state+json", "application/vnd.jupyter.widget-view+json"

def _refs(value):
    "Model ids referenced anywhere in a widget's state."
    if isinstance(value, str): return [value[10:]] if value.startswith("IPY_MODEL_") else []
    if isinstance(value, list): return [r for v in value for r in _refs(v)]
    if isinstance(value, dict): return [r for v in value.values() for r in _refs(v)]
    return []

def prune(nb: dict) -> tuple[int, int]:
    "Drop the widgets no output shows from `nb`'s saved state; returns (kept, dropped)."
    state = nb.get("metadata", {}).get("widgets", {}).get(MIME_STATE, {}).get("state")
    if state is None: return 0, 0
    todo = [o["data"][MIME_VIEW]["model_id"] for c in nb["cells"] for o in c.get("outputs", []) if MIME_VIEW in o.get("data", {})]
    keep = set()
    while todo:
        mid = todo.pop()
        if mid in keep or mid not in state: continue
        keep.add(mid)
        todo.extend(_refs(state[mid].get("state", {})))
    dropped = len(state) - len(keep)
    if keep: nb["metadata"]["widgets"][MIME_STATE]["state"] = {k: v for k, v in state.items() if k in keep}
    else: del nb["metadata"]["widgets"]
    return len(keep), dropped

if __name__ == "__main__":
    for path in map(Path, sys.argv[1:]):
        nb = json.loads(path.read_text(encoding="utf-8"))
        kept, dropped = prune(nb)
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
        print(f"{path}: kept {kept} widget models, dropped {dropped}")
