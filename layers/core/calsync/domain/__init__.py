"""The pure domain: models, meeting links, time windows and the filtering rules. No I/O."""
