"""The small form that asks who decides a gate, under which ticket; it returns the decision or None."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label


@dataclass(frozen=True)
class Decision:
    """What the form returns."""

    gate: str
    approver: str
    ticket: str | None
    decision: str  # approve | reject


class ApprovalForm(ModalScreen[Decision | None]):
    """Approver (default: $USER) and ticket for one decision on one gate; Enter confirms, Escape cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, gate: str, decision: str, default_approver: str) -> None:
        super().__init__()
        self.gate, self.decision, self.default_approver = gate, decision, default_approver

    def compose(self) -> ComposeResult:
        verb = "Approve" if self.decision == "approve" else "Reject"
        with Vertical(id="form"):
            yield Label(f"{verb} [b]{self.gate}[/b]")
            yield Label("Approver")
            yield Input(value=self.default_approver, placeholder="who decides", id="approver")
            yield Label("Ticket (optional)")
            yield Input(placeholder="change ticket or reason", id="ticket")
            with Horizontal(id="form-buttons"):
                yield Button(verb, variant="success" if self.decision == "approve" else "error", id="confirm")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#approver", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "approver":
            self.query_one("#ticket", Input).focus()
        else:
            self._confirm()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "confirm":
            self._confirm()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        """Close without a decision."""
        self.dismiss(None)

    def _confirm(self) -> None:
        approver = self.query_one("#approver", Input).value.strip() or self.default_approver
        ticket = self.query_one("#ticket", Input).value.strip() or None
        self.dismiss(Decision(self.gate, approver, ticket, self.decision))
