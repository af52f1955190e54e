"""Converters from distribution advisory formats into OSV records (as osv.dev converts them)."""
