"""The terminal UI's stylesheet (Textual CSS)."""

CSS = """
#summary { height: auto; padding: 0 1; background: $boost; }
#main { height: 1fr; }
#left { width: 45%; }
#right { width: 55%; }
#phases { height: auto; max-height: 12; border: round $primary; }
#shards { height: 1fr; border: round $primary; }
#detail-box { height: 3fr; border: round $accent; }
#log { height: 2fr; border: round $primary; }
ApprovalForm { align: center middle; }
#form { width: 70; height: auto; border: thick $warning; padding: 1 2; background: $surface; }
#form Input { margin-bottom: 1; }
#form-buttons { height: auto; }
#form-buttons Button { margin-right: 2; }
"""
