"""The run folder: its layout, its records, and comparing finished runs."""
