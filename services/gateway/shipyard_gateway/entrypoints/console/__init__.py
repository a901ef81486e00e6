"""The web console's static page."""
