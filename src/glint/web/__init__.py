"""The browser face: base templates, static files, the home page and shared view helpers."""
