"""Product pictures uploaded in the back office: checked, resized with Pillow and stored
in the media directory (served at /media/) under names made of their content's hash,
so a browser may keep them for a year (the name changes when the picture does).

The shop pages show a picture at 400 × 400 (product cards and the gallery) and 64 × 64
(gallery thumbnails, cart lines); each is written at 1× and 2× as WebP, padded to a
square. `ProductImage.url` is the 400 px file; `image_sizes` names the others.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.audit.services import record
from saumaton.catalogue.editing import emit_updated
from saumaton.catalogue.models import Product, ProductImage, Variant
from saumaton.core.actor import Actor
from saumaton.core.errors import NotFound, ValidationFailed
from saumaton.db.uow import UnitOfWork

MAX_BYTES = 10 * 1024 * 1024  # an upload larger than this is refused
MAX_PIXELS = 40_000_000  # and so is a picture larger than this (decompression bombs)
ACCEPTED = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
SIZES = (64, 128, 400, 800)  # shown at 64 and 400 px; 128 and 800 for sharp screens
MAIN_SIZE = 400
SUBDIR = "products"
_NAME = re.compile(r"^[0-9a-f]{24}-\d+\.webp$")


@dataclass(frozen=True)
class StoredImage:
    digest: str
    files: dict[int, str]  # size -> URL under /media/

    @property
    def url(self) -> str:
        return self.files[MAIN_SIZE]


def is_content_named(file_name: str) -> bool:
    """A file named by its content's hash (never changes: cacheable for a year)."""
    return bool(_NAME.match(file_name))


def image_sizes(url: str) -> dict[int, str]:
    """The URLs of every size of a stored upload ({} for other pictures)."""
    m = re.fullmatch(rf"/media/{SUBDIR}/([0-9a-f]{{24}})-{MAIN_SIZE}\.webp", url)
    if not m:
        return {}
    return {size: f"/media/{SUBDIR}/{m[1]}-{size}.webp" for size in SIZES}


def _open(data: bytes) -> Image.Image:
    if not data:
        raise ValidationFailed("choose a picture to upload", code="image_missing",
                               field="image")
    if len(data) > MAX_BYTES:
        raise ValidationFailed("the picture is larger than 10 MB", code="image_too_large",
                               field="image")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            kind = probe.format or ""
            width, height = probe.size
            if kind not in ACCEPTED:
                raise ValidationFailed(f"a {kind or 'unknown'} file is not accepted",
                                       code="image_type", field="image")
            if width * height > MAX_PIXELS:
                raise ValidationFailed("the picture has too many pixels",
                                       code="image_too_large", field="image")
            probe.verify()
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ValidationFailed("the file is not a JPEG, PNG or WebP picture",
                               code="image_type", field="image") from exc
    return ImageOps.exif_transpose(image)


def store_image(media_dir: Path, data: bytes) -> StoredImage:
    """Check and resize an uploaded picture and write every size (atomically; an upload
    of the same picture again reuses its files)."""
    image = _open(data)
    digest = hashlib.sha256(data).hexdigest()[:24]
    folder = media_dir / SUBDIR
    folder.mkdir(parents=True, exist_ok=True)
    rgba = image.convert("RGBA")
    files = {}
    for size in SIZES:
        name = f"{digest}-{size}.webp"
        target = folder / name
        if not target.exists():
            square = ImageOps.pad(rgba, (size, size), Image.Resampling.LANCZOS,
                                  color=(255, 255, 255, 0))
            tmp = folder / f".{name}.{os.getpid()}.tmp"
            square.save(tmp, "WEBP", quality=85, method=4)
            os.replace(tmp, target)
        files[size] = f"/media/{SUBDIR}/{name}"
    return StoredImage(digest, files)


async def add_uploaded_image(uow: UnitOfWork, actor: Actor, product_id: int,
                             stored: StoredImage, *, alt: str = "",
                             variant_id: int | None = None) -> int:
    """A stored upload as the product's last picture (or a variant's swatch)."""
    actor.require("catalogue.write", everywhere=True)
    s = uow.session
    if await s.get(Product, product_id) is None:
        raise NotFound(f"no product {product_id}", code="product_not_found")
    if variant_id is not None and await s.scalar(select(Variant.product_id).where(
            Variant.id == variant_id)) != product_id:
        raise ValidationFailed(f"variant {variant_id} is not of product {product_id}",
                               code="variant_not_of_product", field="variant_id")
    if len(alt) > 300:
        raise ValidationFailed("at most 300 characters", code="too_long", field="alt")
    last = await s.scalar(select(func.max(ProductImage.position))
                          .where(ProductImage.product_id == product_id))
    row = ProductImage(product_id=product_id, variant_id=variant_id,
                       position=0 if last is None else last + 1, url=stored.url,
                       alt=alt.strip())
    s.add(row)
    await s.flush()
    await record(uow, actor, "image.add", "product", product_id, {
        "image_id": row.id, "url": row.url, "variant_id": variant_id})
    await emit_updated(uow, product_id)
    return row.id


async def update_image(uow: UnitOfWork, actor: Actor, product_id: int, image_id: int, *,
                       alt: str, position: int, variant_id: int | None) -> None:
    actor.require("catalogue.write", everywhere=True)
    s = uow.session
    row = await s.get(ProductImage, image_id)
    if row is None or row.product_id != product_id:
        raise NotFound(f"no image {image_id}", code="image_not_found")
    if len(alt) > 300:
        raise ValidationFailed("at most 300 characters", code="too_long", field="alt")
    if not 0 <= position <= 10_000:
        raise ValidationFailed("a position is 0-10000", code="invalid_position",
                               field="position")
    if variant_id is not None and await s.scalar(select(Variant.product_id).where(
            Variant.id == variant_id)) != product_id:
        raise ValidationFailed(f"variant {variant_id} is not of product {product_id}",
                               code="variant_not_of_product", field="variant_id")
    row.alt, row.position, row.variant_id = alt.strip(), position, variant_id
    await s.flush()
    await record(uow, actor, "image.update", "product", product_id, {
        "image_id": image_id, "alt": row.alt, "position": position, "variant_id": variant_id})
    await emit_updated(uow, product_id)


async def delete_image(uow: UnitOfWork, actor: Actor, product_id: int, image_id: int) -> None:
    """Take a picture off the product (its files stay: another product may use them)."""
    actor.require("catalogue.write", everywhere=True)
    s = uow.session
    row = await s.get(ProductImage, image_id)
    if row is None or row.product_id != product_id:
        raise NotFound(f"no image {image_id}", code="image_not_found")
    url = row.url
    await s.delete(row)
    await s.flush()
    await record(uow, actor, "image.delete", "product", product_id,
                 {"image_id": image_id, "url": url})
    await emit_updated(uow, product_id)


async def reorder_images(uow: UnitOfWork, actor: Actor, product_id: int,
                         image_ids: list[int]) -> None:
    """Put the product's pictures in this order (positions 0, 1, …); the list must name
    each of its pictures once."""
    actor.require("catalogue.write", everywhere=True)
    s = uow.session
    if await s.get(Product, product_id) is None:
        raise NotFound(f"no product {product_id}", code="product_not_found")
    rows = {row.id: row for row in (await s.scalars(
        select(ProductImage).where(ProductImage.product_id == product_id))).all()}
    if len(set(image_ids)) != len(image_ids) or set(image_ids) != set(rows):
        raise ValidationFailed("name each picture of the product once",
                               code="invalid_image_order", field="image_ids",
                               extra={"image_ids": sorted(rows)})
    for position, image_id in enumerate(image_ids):
        rows[image_id].position = position
    await s.flush()
    await record(uow, actor, "image.reorder", "product", product_id,
                 {"image_ids": image_ids})
    await emit_updated(uow, product_id)


async def images_after(session: AsyncSession, product_id: int,
                       after: tuple[int, int] | None, limit: int) -> list[ProductImage]:
    """A product's pictures in display order (position, id), those after `after`."""
    if await session.get(Product, product_id) is None:
        raise NotFound(f"no product {product_id}", code="product_not_found")
    q = (select(ProductImage).where(ProductImage.product_id == product_id)
         .order_by(ProductImage.position, ProductImage.id).limit(limit + 1))
    if after is not None:
        q = q.where(tuple_(ProductImage.position, ProductImage.id) > after)
    return list((await session.scalars(q)).all())


async def get_image(session: AsyncSession, product_id: int, image_id: int) -> ProductImage:
    row = await session.get(ProductImage, image_id)
    if row is None or row.product_id != product_id:
        raise NotFound(f"no image {image_id}", code="image_not_found")
    return row
