"""Adapters to the outside world, each kind behind one small interface."""
