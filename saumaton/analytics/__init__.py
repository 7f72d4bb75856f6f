"""First-party analytics: funnel events recorded by our own server, no third parties."""

# The funnel, in order. A shop page records them through saumaton.web.analytics.track.
KINDS = ("visit", "product_view", "add_to_cart", "checkout_started", "payment_started",
         "order_placed")
