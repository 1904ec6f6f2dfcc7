"""Browser tests in headless Chromium (Debian's /usr/bin/chromium driven by playwright; set up with `bash tests/browser_setup.sh`):
a map with an attention overlay saved as a standalone page and served offline from 127.0.0.1, a map of nbs/09_maps.ipynb
rendered from the notebook's saved widget state (what the docs site shows), and the band picker of nbs/09_maps.ipynb run live
in JupyterLab. They are skipped only when Chromium is missing and CI is unset.
DUALDISTILL_SCREENSHOTS=1 also saves nbs/images/attention_map.png and nbs/images/band_picker.png for the README."""
import functools, http.server, io, json, os, secrets, signal, socket, subprocess, sys, threading, time, urllib.request
from contextlib import contextmanager
from pathlib import Path
import numpy as np
import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("DUALDISTILL_CHROMIUM", "/usr/bin/chromium"))
BROWSER_JS = Path(os.environ.get("DUALDISTILL_BROWSER_JS", REPO / "build" / "browser-js"))
SCREENSHOTS = os.environ.get("DUALDISTILL_SCREENSHOTS") == "1"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"]
SETUP = "run `bash tests/browser_setup.sh` (as root, or with sudo) to install Chromium, playwright and the widget JavaScript"

pytestmark = pytest.mark.skipif(not CHROMIUM.exists() and not os.environ.get("CI"), reason=f"no {CHROMIUM}: {SETUP}")

@pytest.fixture(scope="module")
def browser():
    try: from playwright.sync_api import sync_playwright
    except ImportError: pytest.fail(f"playwright is not installed: {SETUP}")
    if not CHROMIUM.exists(): pytest.fail(f"CI is set but {CHROMIUM} is missing: {SETUP}")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000)
        yield b
        b.close()

def not_blank(png: bytes) -> bool:
    "A screenshot shows something: many colours and real contrast."
    a = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3)
    return len(np.unique(a, axis=0)) > 200 and a.std(0).mean() > 15

def save_screenshot(png: bytes, name: str):
    if SCREENSHOTS: (REPO / "nbs" / "images" / name).write_bytes(png)

@contextmanager
def serve(folder: Path):
    "A static HTTP server for `folder` on 127.0.0.1, stopped on exit."
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args): pass
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try: yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown(); server.server_close(); thread.join(10)

def widget_assets(folder: Path) -> Path:
    "A folder laid out for `save_html(assets_url=...)`: require.js, html-manager/, and jupyter-leaflet/ and anywidget/ (from their pip packages)."
    from jupyter_core.paths import jupyter_path
    for path, what in ((BROWSER_JS / "require.js", "require.js"), (BROWSER_JS / "html-manager" / "embed-amd.js", "the html-manager")):
        if not path.exists(): pytest.fail(f"{what} is missing from {BROWSER_JS}: {SETUP}")
    links = {"require.js": BROWSER_JS / "require.js", "html-manager": BROWSER_JS / "html-manager"}
    for package in ("jupyter-leaflet", "anywidget"):
        links[package] = next((Path(p) / package for p in jupyter_path("nbextensions") if (Path(p) / package / "index.js").exists()), None)
        if links[package] is None: pytest.fail(f"{package}'s index.js was not found in any nbextensions folder: is it installed?")
    folder.mkdir()
    for name, target in links.items(): (folder / name).symlink_to(target.resolve())
    return folder

def test_attention_overlay_map_as_offline_standalone_html(tmp_path, browser, scene):
    from dualdistill.sensors import DEO_BANDS
    from dualdistill.student import Student
    from dualdistill.maps import composite, attention_map, encoder_maps, product_map, save_html
    t0 = time.perf_counter()
    window = (250, 200, 224, 224)
    torch.manual_seed(0)
    student = Student(DEO_BANDS, size="tiny", teacher_dim=32, head_hidden=32).eval()
    maps = encoder_maps(scene.read(window, DEO_BANDS.names), DEO_BANDS, student)
    image = composite(scene, "true colour", window=window, gamma=1.3)
    attention = attention_map(maps["student MS"].attention, like=image, name="student MS")
    m = product_map([image, attention], opacity=[1.0, 0.6], basemap=None, height="480px")
    save_html(m, tmp_path / "map.html", title="attention map", assets_url="assets")
    widget_assets(tmp_path / "assets")
    page = browser.new_page(viewport={"width": 900, "height": 560})
    requests, errors = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        with serve(tmp_path) as url:
            page.goto(f"{url}/map.html", timeout=30_000)
            page.wait_for_function("""() => { const im = [...document.querySelectorAll('img.leaflet-image-layer')];
                                              return im.length == 2 && im.every(i => i.complete && i.naturalWidth > 0); }""", timeout=60_000)
            layers = page.evaluate("""() => [...document.querySelectorAll('img.leaflet-image-layer')].map(i => {
                const r = i.getBoundingClientRect(); return {w: i.naturalWidth, h: i.naturalHeight, opacity: getComputedStyle(i).opacity,
                                                             box: [r.left, r.top, r.width, r.height]}; })""")
            shot = page.locator(".leaflet-container").screenshot(timeout=30_000)
            # the opacity slider works with no kernel: two steps left (0.05 each) fade the attention layer to 0.5
            handle = page.locator(".leaflet-control .noUi-handle").first
            handle.focus(timeout=10_000)
            handle.press("ArrowLeft"); handle.press("ArrowLeft")
            page.wait_for_function("""() => Math.abs(getComputedStyle(document.querySelectorAll('img.leaflet-image-layer')[1]).opacity - 0.5) < 1e-6""",
                                   timeout=20_000)
            faded = page.evaluate("() => [...document.querySelectorAll('img.leaflet-image-layer')].map(i => getComputedStyle(i).opacity)")
    finally: page.close()
    assert not errors, errors
    local = (url, "data:", f"blob:{url}")  # anywidget imports the link's code from a blob URL made in the page
    assert all(r.startswith(local) for r in requests), [r for r in requests if not r.startswith(local)][:5]
    assert all(layer["w"] > 0 and layer["h"] > 0 for layer in layers)
    assert [float(layer["opacity"]) for layer in layers] == [1.0, 0.6]
    assert [float(o) for o in faded] == [1.0, 0.5]  # only the top layer follows the slider
    assert np.allclose(layers[0]["box"], layers[1]["box"], atol=1) and layers[0]["box"][2] > 100  # the two overlays cover one footprint
    assert not_blank(shot)
    save_screenshot(shot, "attention_map.png")
    assert time.perf_counter() - t0 < 120

def test_saved_notebook_map_works_without_a_kernel(tmp_path, browser):
    "What the docs site shows: 09_maps' product map rendered from the notebook's saved widget state, no kernel, opacity slider live."
    nb = json.loads((REPO / "nbs" / "09_maps.ipynb").read_text(encoding="utf-8"))
    state = nb["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]
    cell = next(c for c in nb["cells"] if "".join(c["source"]).startswith("truecolour = composite(scene"))
    view = next(o["data"]["application/vnd.jupyter.widget-view+json"] for o in cell["outputs"] if "application/vnd.jupyter.widget-view+json" in o.get("data", {}))
    widget_assets(tmp_path / "assets")
    paths = json.dumps({name: f"assets/{name}/index" for name in ("anywidget", "jupyter-leaflet")})
    (tmp_path / "site.html").write_text(
        '<!DOCTYPE html>\n<html><head><meta charset="UTF-8"><script src="assets/require.js"></script>\n'
        f'<script>require.config({{paths: {paths}}});</script>\n<script src="assets/html-manager/embed-amd.js"></script>\n'
        f'<script type="application/vnd.jupyter.widget-state+json">\n{json.dumps(state)}\n</script></head>\n'
        f'<body><script type="application/vnd.jupyter.widget-view+json">\n{json.dumps(view)}\n</script></body></html>\n')
    page = browser.new_page(viewport={"width": 900, "height": 600})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    images = "[...document.querySelectorAll('img.leaflet-image-layer')]"
    try:
        with serve(tmp_path) as url:
            page.goto(f"{url}/site.html", timeout=30_000)
            page.wait_for_function(f"() => {images}.length == 2 && {images}.every(i => i.complete && i.naturalWidth > 0)", timeout=60_000)
            before = page.evaluate(f"() => {images}.map(i => getComputedStyle(i).opacity)")
            handle = page.locator(".leaflet-control .noUi-handle").first
            handle.focus(timeout=10_000)
            handle.press("ArrowRight")
            page.wait_for_function(f"() => Math.abs(getComputedStyle({images}[1]).opacity - 0.65) < 1e-6", timeout=20_000)
    finally: page.close()
    assert not errors, errors
    assert [float(o) for o in before] == [1.0, 0.6]

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

@contextmanager
def jupyterlab(root: Path, log: Path):
    "JupyterLab serving `root` on 127.0.0.1 with a random token; yields its base URL and token; stops it and its kernels on exit."
    port, token = free_port(), secrets.token_hex(16)
    settings = root.parent / "lab-settings"
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(root.parent / "jupyter-config"), JUPYTER_RUNTIME_DIR=str(root.parent / "jupyter-runtime"),
               IPYTHONDIR=str(root.parent / "ipython"), PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--expose-app-in-browser",
           f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={root.parent / 'lab-workspaces'}",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"] + (["--allow-root"] if os.geteuid() == 0 else [])
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    api = lambda path, method="GET": urllib.request.urlopen(urllib.request.Request(f"{base}{path}?token={token}", method=method), timeout=5)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None: pytest.fail(f"JupyterLab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                api("/api/status").close(); break
            except OSError:
                if time.monotonic() > deadline: pytest.fail(f"JupyterLab did not answer within 60 s:\n{log.read_text()[-3000:]}")
                time.sleep(0.5)
        yield base, token
    finally:
        try:
            with api("/api/kernels") as r: kernels = json.load(r)
            for k in kernels: api(f"/api/kernels/{k['id']}", "DELETE").close()
        except OSError: pass
        proc.terminate()
        try: proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL); proc.wait(10)

NOTEBOOK_STATE = """() => {
    const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    const kernel = panel && panel.sessionContext && panel.sessionContext.session && panel.sessionContext.session.kernel;
    if (!kernel || !panel.content) return null;
    const cells = panel.content.widgets.filter(c => c.model.type === 'code');
    const errors = cells.flatMap(c => c.model.outputs.toJSON().filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue));
    return {status: kernel.status, connection: kernel.connectionStatus, pending: cells.filter(c => c.model.executionCount === null).length,
            running: cells.filter(c => c.promptNode && c.promptNode.textContent.includes('*')).length, errors};
}"""

def wait_for_notebook(page, done: str, timeout_s: float):
    "Poll the open notebook's state until the JavaScript condition `done` (on `s`) holds; fail early on an error output."
    deadline, state = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        state = page.evaluate(NOTEBOOK_STATE)
        if state and state["errors"]: pytest.fail(f"the notebook raised: {state['errors']}")
        if state and page.evaluate(f"s => {done}", state): return state
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout_s} s waiting for the notebook; last state {state}")

def test_band_picker_live_in_jupyterlab(tmp_path, browser):
    import nbformat
    t0 = time.perf_counter()
    root = tmp_path / "notebooks"
    root.mkdir()
    nb = nbformat.read(REPO / "nbs" / "09_maps.ipynb", as_version=4)
    nb.cells = [c for c in nb.cells if "nbdev_export()" not in c.source]  # the export cell needs the repository around it
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, root / "09_maps.ipynb")
    with jupyterlab(root, tmp_path / "lab.log") as (base, token):
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        try:
            page.goto(f"{base}/lab/tree/09_maps.ipynb?token={token}", timeout=60_000)
            wait_for_notebook(page, "s.connection === 'connected' && s.status === 'idle'", 60)
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            wait_for_notebook(page, "s.pending === 0 && s.running === 0 && s.status === 'idle'", 150)
            picker = page.locator(".dualdistill-band-picker").first
            picker.scroll_into_view_if_needed(timeout=10_000)
            preview = picker.locator("img.dualdistill-preview")
            preview.wait_for(timeout=20_000)
            page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=preview.element_handle(), timeout=20_000)
            before = (preview.get_attribute("src"), preview.screenshot())
            assert not_blank(before[1])
            picker.locator(".dualdistill-red select").select_option(label="B12 (swir22, 2202.4 nm, 20 m)", timeout=10_000)
            page.wait_for_function("([img, src]) => img.src !== src && img.complete && img.naturalWidth > 0",
                                   arg=[preview.element_handle(), before[0]], timeout=30_000)
            assert preview.screenshot() != before[1]
            page.wait_for_function("sel => sel.value === 'three bands'", arg=picker.locator(".dualdistill-preset select").element_handle(), timeout=20_000)
            picker.locator(".dualdistill-preset select").select_option(label="colour infrared", timeout=10_000)  # and back: the kernel sets the band menus
            page.wait_for_function("sel => sel.selectedOptions[0].textContent.startsWith('B08')",
                                   arg=picker.locator(".dualdistill-red select").element_handle(), timeout=30_000)
            page.wait_for_timeout(1000)  # let the map layer's new image paint
            save_screenshot(picker.screenshot(), "band_picker.png")
            assert page.locator(".leaflet-sbs-divider").count() >= 1  # the split view of the notebook rendered too
        finally: page.close()
    assert time.perf_counter() - t0 < 180
