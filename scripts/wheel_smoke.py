"""Run by scripts/check_wheel.sh in a fresh environment, outside the checkout, against the installed wheel.

``library``: camlab imports and explains with a shipped model while Streamlit is not installed.
``serve``: ``camlab-app`` (the installed launcher) serves the app until Streamlit's health check answers.
``app``: with the [app] extra, the installed app's Explore, Walls and Audit pages render without an exception,
Explore showing the shipped walled model's leakage (HiRes-CAM 0, Grad-CAM above it).
"""
import importlib.util
import sys
from pathlib import Path

import camlab


def library() -> None:
    """The library alone: a shipped model explained, HiRes-CAM exactly 0 behind its wall."""
    assert importlib.util.find_spec("streamlit") is None, "the library environment must not have Streamlit"
    assert "site-packages" in camlab.__file__, camlab.__file__
    import torch

    from camlab.study import load_checkpoint

    loaded = load_checkpoint("masked_vgg", "cpu")  # package data, not a checkout's models/
    image = torch.rand(1, 3, loaded.input_size, loaded.input_size)
    result = camlab.explain(loaded.model, image, ["gradcam", "hirescam"], target_layer=loaded.default_layer)
    assert result["hirescam"].raw.shape[-2:] == (14, 14), result["hirescam"].raw.shape
    assert result["hirescam"].raw[0, -9:].abs().max() == 0, "HiRes-CAM paints the shipped model's wall"
    print(f"library: camlab {camlab.__version__} from {Path(camlab.__file__).parent}, {len(camlab.list_methods())} methods")


def app() -> None:
    """The app from the installed package: Explore's leakage, then the Walls and Audit pages."""
    from streamlit.testing.v1 import AppTest

    from camlab.resources import app_script

    run = AppTest.from_file(str(app_script()), default_timeout=300).run()
    assert not run.exception and not run.error, [e.value for e in [*run.exception, *run.error]]
    leakage = {m.label.split()[0]: m.value for m in run.metric if "leakage" in m.label}
    assert leakage.get("hirescam") == "0.000" and float(leakage["gradcam"]) > 0, leakage  # the shipped walled model
    print(f"app: Explore rendered from {app_script()}, leakage {leakage}")
    for page in ("2_Walls", "6_Audit"):
        run.switch_page(f"pages/{page}.py").run()
        assert not run.exception and not run.error, [e.value for e in [*run.exception, *run.error]]
        print(f"app: {page} rendered ({len(run.markdown)} markdown elements)")


def serve() -> None:
    """``camlab-app`` from the environment's scripts, on a free port, until /_stcore/health says ok."""
    import socket
    import subprocess
    import time
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    launcher = Path(sys.executable).with_name("camlab-app")
    server = subprocess.Popen([str(launcher), "--server.port", str(port), "--server.address", "127.0.0.1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as answer:
                    assert answer.read() == b"ok"
                    print(f"serve: {launcher.name} answered on port {port}")
                    return
            except OSError:
                assert server.poll() is None, f"{launcher.name} exited with {server.returncode}"
                time.sleep(0.5)
        raise AssertionError(f"{launcher.name} did not answer within 120 s")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    {"library": library, "app": app, "serve": serve}[sys.argv[1]]()
