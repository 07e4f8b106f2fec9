"""Speech engine adapters behind :class:`steno.common.engine.Engine`."""
