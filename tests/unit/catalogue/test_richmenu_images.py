"""`stepline check` on rich menu images: each bad image is reported at its `image:` line."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from bot.catalogue import CatalogueError
from bot.catalogue.loader import load_catalogue
from tests.unit.catalogue.conftest import Write

MENU = """\
rich_menu: guest
size: {size}
image: {image}
areas:
  - {{bounds: [0, 0, 2500, 843], tap: {{message: こんにちは}}}}
"""


def png(width: int, height: int, *, noise: bool = False) -> bytes:
    image = Image.new("RGB", (width, height), (240, 200, 180))
    if noise:  # random pixels do not compress: a file over LINE's 1 MB
        image = Image.frombytes("RGB", (width, height), bytes(_noise(width * height * 3)))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _noise(count: int) -> bytes:
    import random

    return random.Random(7).randbytes(count)


def problems(flows: Path) -> list[str]:
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(flows)
    return [str(p) for p in caught.value.problems]


def test_a_good_image_loads(flows: Path, write: Write) -> None:
    (flows / "richmenus").mkdir()
    (flows / "richmenus" / "guest.png").write_bytes(png(2500, 843))
    write("menu.yaml", MENU.format(size="compact", image="richmenus/guest.png"))
    assert "guest" in load_catalogue(flows).rich_menus


@pytest.mark.parametrize(
    ("data", "size", "expected"),
    [
        (png(2500, 1686), "compact", "image is 2500×1686 px but the menu is 2500×843"),
        (b"GIF89a" + bytes(40), "compact", "GIF images are not accepted"),
        (png(2500, 843, noise=True), "compact", "LINE accepts at most 1 MB (1,000,000 bytes)"),
        (b"\x89PNG\r\n\x1a\n" + bytes(20), "compact", "truncated or corrupt"),
    ],
    ids=["wrong-size", "gif", "over-1mb", "truncated"],
)
def test_a_bad_image_is_reported_at_its_line(
    flows: Path, write: Write, data: bytes, size: str, expected: str
) -> None:
    (flows / "guest.png").write_bytes(data)
    write("menu.yaml", MENU.format(size=size, image="guest.png"))
    found = problems(flows)
    assert len(found) == 1, found
    assert found[0].startswith("flows/menu.yaml:3:8: image guest.png: "), found
    assert expected in found[0]


def test_a_missing_image_file_is_reported(flows: Path, write: Write) -> None:
    write("menu.yaml", MENU.format(size="compact", image="nowhere.png"))
    assert problems(flows) == ["flows/menu.yaml:3:8: image file not found: flows/nowhere.png"]
