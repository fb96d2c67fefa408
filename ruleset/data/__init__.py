"""Rule-set data (JSON), a package only so that it ships and loads with importlib.resources."""
