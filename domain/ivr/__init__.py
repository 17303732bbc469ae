"""IVR flows: voice menus as data, each published version an event."""
