"""The parts the screens are built from."""
