"""Real local stand-ins for services the tests talk to over HTTP."""
