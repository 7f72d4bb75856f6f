"""Pictures in a mail's HTML as inline parts (multipart/related, `cid:` links): many
mail programs block `data:` images.

The queue keeps a mail as text only, so the picture is made when the mail is sent,
from what its Content-ID names: `cid:qr-NT0001234821@qr.saumaton.invalid` is a QR code
of "NT0001234821". A retried mail gets the same picture again.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import segno

QR_DOMAIN = "qr.saumaton.invalid"
# Letters and digits only: what a pickup code or card number is, and safe as is in both
# a cid: URL and a Content-ID header.
_QR_SRC = re.compile(r"cid:qr-([A-Za-z0-9]{1,64})@" + re.escape(QR_DOMAIN))
QR_SCALE = 5  # 29 modules + border: about 145 px, the size the templates ask for
QR_BORDER = 2


@dataclass(frozen=True)
class InlineImage:
    content_id: str  # without the angle brackets
    png: bytes
    filename: str


def qr_src(text: str) -> str:
    """The `src` of an <img> showing `text` as a QR code."""
    if not re.fullmatch(r"[A-Za-z0-9]{1,64}", text):
        raise ValueError(f"a mail QR code holds 1-64 letters and digits, not {text!r}")
    return f"cid:qr-{text}@{QR_DOMAIN}"


def qr_png(text: str) -> bytes:
    out = io.BytesIO()
    segno.make(text, error="m", micro=False).save(out, kind="png", scale=QR_SCALE,
                                                   border=QR_BORDER)
    return out.getvalue()


def inline_images(html: str) -> list[InlineImage]:
    """The pictures `html` links to with `cid:` (each once), made now."""
    texts = dict.fromkeys(m[1] for m in _QR_SRC.finditer(html))
    return [InlineImage(f"qr-{t}@{QR_DOMAIN}", qr_png(t), f"{t}.png") for t in texts]
