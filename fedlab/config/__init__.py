"""The run configuration: validated settings (pydantic), TOML loading with one-line errors, paper presets."""
