"""Pieces every business area shares: errors, money, time, the actor."""
