"""bastion: the operator's console (a Textual TUI) and the command line for scripts."""
