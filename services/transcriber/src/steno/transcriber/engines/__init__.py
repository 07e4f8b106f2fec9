"""Speech engine adapters behind :class:`steno.transcriber.engines.port.Engine`."""
