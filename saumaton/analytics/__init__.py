"""First-party analytics: funnel events recorded by our own server, no third parties."""
