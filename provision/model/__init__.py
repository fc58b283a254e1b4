"""The model: profiles, the host inventory, the site, the catalog that loads them, the taxonomy,
the strict YAML loader and the one exception tree. Imports nothing else of the project."""
