"""The minimal web view and the static pages the daemon serves."""
