"""Package data: embedded Adult and German credit tables, their schemas and hierarchies (see NOTICE)."""
