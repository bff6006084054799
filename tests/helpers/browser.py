"""A page as headless Chromium renders it: the DOM after its scripts ran, or a screenshot and how
much is on it."""
from __future__ import annotations

import shutil
import subprocess

# tools/setup.sh installs Debian's chromium
CHROMIUM = shutil.which("chromium") or "chromium"


def dump_dom(url: str, tmp_path) -> str:
    """The page's DOM after its scripts ran (virtual time lets fetch/JSONP settle)."""
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-dev-shm-usage", "--no-first-run",
         f"--user-data-dir={tmp_path / 'chromium'}", "--virtual-time-budget=8000",
         "--dump-dom", url],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def screenshot(url: str, path, tmp_path, size: tuple[int, int] = (1280, 900)) -> dict:
    """Chromium's screenshot of the page after its scripts ran, and what is on it: the share of
    pixels that differ from the background and the number of distinct colours (a blank or error
    page has almost none of either)."""
    from PIL import Image

    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-dev-shm-usage", "--no-first-run", "--hide-scrollbars",
         f"--user-data-dir={tmp_path / 'chromium-shot'}", "--virtual-time-budget=8000",
         f"--window-size={size[0]},{size[1]}", f"--screenshot={path}", url],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0 and path.exists(), result.stderr[-2000:]
    image = Image.open(path).convert("RGB")
    total = image.size[0] * image.size[1]
    colours = image.getcolors(maxcolors=total)  # [(count, colour)]
    background = max(count for count, _ in colours)
    return {"size": image.size, "ink": 1 - background / total, "colours": len(colours)}
