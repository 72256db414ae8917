"""Studies that back the project's choices with measurements (docs/INIT.md)."""
