"""Thin blueprints: parse the request, call the service layer, serialize the answer."""
