"""Demo data: the "Kaunis Iho" shop and a generator of benchmark-sized data sets."""

from saumaton.demo.scale import generate_scale
from saumaton.demo.shop import DEMO_LOGINS, HERO_SLUG, DemoAlreadyLoaded, DemoSummary, load_demo

__all__ = ["DEMO_LOGINS", "HERO_SLUG", "DemoAlreadyLoaded", "DemoSummary", "generate_scale",
           "load_demo"]
