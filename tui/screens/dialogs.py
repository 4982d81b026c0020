"""Modal dialogs: confirm, a small form, and the once-shown secret."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static


class Confirm(ModalScreen[bool]):
    """Yes or no; `esc` is no."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, id="question")
            with Horizontal(classes="buttons"):
                yield Button("Yes (y)", id="yes", variant="error")
                yield Button("No (n)", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


@dataclass
class Field:
    name: str
    label: str
    default: str = ""
    password: bool = False
    choices: tuple[str, ...] = ()  # a Select instead of an Input
    placeholder: str = ""


class Form(ModalScreen[None]):
    """A few fields and OK. OK calls `submit(form, values)`, which starts the action and passes `form.done` as
    its `then`: the form closes once the server has agreed. When it refuses (or `form.failed` says a value is
    wrong) the form stays open with what was typed, and says why. `esc` cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="form.cancel")]

    def __init__(self, title: str, fields: list[Field],
                 submit: Callable[[Form, dict[str, str]], None]) -> None:
        super().__init__()
        self.title_text, self.fields, self.submit = title, fields, submit

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"[b]{self.title_text}[/]")
            with Grid(classes="form"):
                for f in self.fields:
                    yield Label(f.label)
                    if f.choices:
                        yield Select([(c, c) for c in f.choices], value=f.default or f.choices[0], allow_blank=False,
                                     id=f"field-{f.name}", compact=True)
                    else:
                        yield Input(f.default, placeholder=f.placeholder, password=f.password, id=f"field-{f.name}",
                                    compact=True)
            yield Static("", id="problem", classes="error", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("OK", id="ok", variant="primary")
                yield Button("Cancel", id="cancel")

    def values(self) -> dict[str, str]:
        out = {}
        for f in self.fields:
            widget = self.query_one(f"#field-{f.name}")
            out[f.name] = str(widget.value)
        return out

    def _ok(self) -> None:
        self.query_one("#problem", Static).update("")
        self.submit(self, self.values())

    def failed(self, problem: str) -> None:
        """Keep the form open, with what was typed, and say what is wrong."""
        self.query_one("#problem", Static).update(problem)

    def done(self, _result: object = None) -> None:
        if self.is_attached:
            self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._ok()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self._ok()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ShownOnce(ModalScreen[None]):
    """A secret the server shows one time (an API key, a reset token), with a copy action."""

    BINDINGS = [
        Binding("c", "copy", "Copy", id="secret.copy"),
        Binding("escape,enter", "close", "Close", id="secret.close"),
    ]

    def __init__(self, title: str, secret: str) -> None:
        super().__init__()
        self.title_text, self.secret = title, secret

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"[b]{self.title_text}[/]")
            yield Static("Shown this once: copy it now (c).", classes="hint")
            yield Static(self.secret, id="secret", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Copy (c)", id="copy", variant="primary")
                yield Button("Close", id="close")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "copy":
            self.action_copy()
        else:
            self.dismiss(None)

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.secret)
        self.notify("copied to the clipboard")

    def action_close(self) -> None:
        self.dismiss(None)
