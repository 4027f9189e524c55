"""Importers: other price sources converted into costspan's catalog schema."""
