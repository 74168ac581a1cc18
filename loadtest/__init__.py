"""Load generation with Locust: labeled traffic, and (later) capacity search."""
