"""The app's page in a real browser: headless Chromium driven by Selenium, against
`python -m alexnet_tf.app` run as a subprocess on a short demo run.

A photo is uploaded through the page's file field; the top-5 read off the page equal
`python -m alexnet_tf.predict`'s (run as a subprocess on the same file), for the centre
crop and the 10 crops; the layer is switched in Activations; the neighbours open from the
gallery; another run's filters and a bad file show their message on the page. Each view
is saved as a screenshot: into $ALEXNET_APP_SCREENSHOTS when set (docs/images), else a
temporary folder.

Marked `browser`, which `python -m pytest` leaves out (pyproject.toml); run them with
`python -m pytest -m browser`. Without Chromium, its driver or Selenium they fail, saying
what to install.
"""

import os
import shutil
import subprocess
import sys

import pytest
from appserver import ROOT, start_command, wait_exit
from caffe_wire import CAFFE_SHAPES, net, random_layers

from alexnet_tf import import_weights
from alexnet_tf.data.demo import ensure_demo_data

pytestmark = pytest.mark.browser

APT = "apt-get install -y --no-install-recommends chromium chromium-driver"
PIP = "pip install -r requirements-test.txt -c constraints.txt"
DEMO_STEPS = 30
PHOTO = "val/04_cross/cross_0003.jpg"  # one of the demo's validation images
SHOTS = ("classify", "filters", "activations", "neighbours")


def missing():
    """What the browser tests lack, as one line with the command that installs it, or None."""
    lacking = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    if lacking:
        return f"{' and '.join(lacking)} not found on PATH; install them: {APT}"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return f"the selenium package is not installed; install it: {PIP}"
    return None


@pytest.fixture(scope="module")
def browser():
    lack = missing()
    if lack:
        pytest.fail(lack, pytrace=False)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1100,900", "--disable-gpu"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """(run folder, gallery folder, photo) of a short demo run: the demo's data, trained
    for DEMO_STEPS steps; the gallery holds 4 validation images of each class."""
    root = tmp_path_factory.mktemp("app_demo")
    data = ensure_demo_data()
    run = str(root / "demo")
    train = subprocess.run(
        [sys.executable, "train.py", "--epochs", "1", "--steps_per_epoch", str(DEMO_STEPS),
         "--val_steps", "2", "--model_dir", run],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert train.returncode == 0, train.stderr[-3000:]
    gallery = root / "gallery"
    for folder in sorted(os.listdir(os.path.join(data, "val"))):
        names = sorted(os.listdir(os.path.join(data, "val", folder)))[10:14]
        os.makedirs(gallery / folder)
        for name in names:
            shutil.copy(os.path.join(data, "val", folder, name), gallery / folder / name)
    return run, str(gallery), os.path.join(data, PHOTO)


@pytest.fixture(scope="module")
def page(browser, demo):
    run, gallery, _ = demo
    process, url = start_command(["--model_dir", run, "--gallery", gallery])
    browser.get(url)
    wait(browser, lambda d: d.find_element("tag name", "body").get_attribute("data-ready"))
    yield browser, process
    process.terminate()
    wait_exit(process)
    process.communicate()


def wait(browser, condition, timeout=60):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout).until(condition)


def ready(browser, section, **expected):
    def check(driver):
        element = driver.find_element("id", section)
        if element.get_attribute("data-ready") != "1":
            return False
        return all(element.get_attribute(f"data-{k}") == v for k, v in expected.items())

    wait(browser, check)


def screenshot(browser, name, tmp_path):
    folder = os.environ.get("ALEXNET_APP_SCREENSHOTS") or str(tmp_path)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"app_{name}.png")
    assert browser.save_screenshot(path), path
    return path


def tab(browser, name):
    browser.find_element("css selector", f'nav button[data-view="{name}"]').click()


def predict_lines(run, photo, crops):
    """`python -m alexnet_tf.predict`'s (class, percent) lines, run as a subprocess."""
    done = subprocess.run(
        [sys.executable, "-m", "alexnet_tf.predict", photo, "--model_dir", run,
         "--crops", str(crops)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return [(line.split()[1], line.split()[-1]) for line in done.stdout.splitlines()[1:]]


def page_lines(browser, target):
    rows = browser.find_elements("css selector", f"#{target} .bar")
    return [(r.get_attribute("data-cls"), r.find_element("class name", "pct").text) for r in rows]


def test_the_page_shows_predicts_top_5_the_crops_the_layers_and_the_neighbours(
    page, demo, tmp_path
):
    browser, process = page
    run, _, photo = demo
    browser.find_element("id", "file").send_keys(photo)
    ready(browser, "classify")
    assert page_lines(browser, "top-centre") == predict_lines(run, photo, 1)
    assert page_lines(browser, "top-ten") == predict_lines(run, photo, 10)
    crops = browser.find_elements("css selector", "#crops img")
    assert [c.get_attribute("naturalWidth") for c in crops] == ["67"] * 10
    screenshot(browser, "classify", tmp_path)

    tab(browser, "activations")
    ready(browser, "activations", layer="conv1 tower A")
    assert browser.find_element("id", "act-info").text.startswith("conv1 tower A: 48 maps of 15x15")
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element("id", "layer")).select_by_visible_text("conv2 tower B")
    ready(browser, "activations", layer="conv2 tower B")
    assert browser.find_element("id", "act-info").text.startswith("conv2 tower B: 128 maps of 7x7")
    screenshot(browser, "activations", tmp_path)

    tab(browser, "neighbours")
    ready(browser, "neighbours")
    captions = [f.text for f in browser.find_elements("css selector", "#nearest figcaption")]
    assert len(captions) == 6 and all(c.startswith(f"#{i + 1} ") for i, c in enumerate(captions))
    images = browser.find_elements("css selector", "#nearest img")
    widths = [i.get_attribute("naturalWidth") for i in images]
    assert all(int(w) > 0 for w in widths), widths  # each gallery image loaded
    screenshot(browser, "neighbours", tmp_path)
    assert process.poll() is None


def test_filters_of_this_run_and_another_and_a_bad_file_say_so_on_the_page(page, tmp_path):
    browser, process = page
    tab(browser, "filters")
    ready(browser, "filters")
    titles = [h.text for h in browser.find_elements("css selector", "#filter-blocks h4")]
    assert titles == ["tower A: 48 kernels (maps 0-47)", "tower B: 48 kernels (maps 48-95)"]
    screenshot(browser, "filters", tmp_path)

    field = browser.find_element("id", "other-run")
    field.send_keys(str(tmp_path / "no_such_run"))
    browser.find_element("id", "show-other").click()
    wait(browser, lambda d: d.find_element("id", "error").text)
    assert (
        browser.find_element("id", "error").text
        == f"run folder {tmp_path / 'no_such_run'} does not exist"
    )

    layers = random_layers(CAFFE_SHAPES, seed=3)
    (tmp_path / "bvlc.caffemodel").write_bytes(net(layers))
    other = str(tmp_path / "caffe")
    argv = [str(tmp_path / "bvlc.caffemodel"), "--output", other, "--nosaved_model"]
    assert import_weights.main(argv) == 0
    field.clear()
    field.send_keys(other)
    browser.find_element("id", "show-other").click()
    wait(browser, lambda d: d.find_element("id", "filters-title").text == f"conv1 of {other}")
    assert browser.find_element("id", "error").text == ""

    fake = tmp_path / "notes.jpg"
    fake.write_text("not a photo\n")
    tab(browser, "classify")
    browser.find_element("id", "file").send_keys(str(fake))
    wait(browser, lambda d: d.find_element("id", "error").text)
    assert browser.find_element("id", "error").text.startswith("not a JPEG or PNG image")
    assert process.poll() is None
