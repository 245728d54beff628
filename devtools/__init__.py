"""Development tools: local stand-ins, event signing, the local server. Not deployed."""
