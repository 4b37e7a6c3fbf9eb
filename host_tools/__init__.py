"""Host tools for boardmcp: board profiles, staging, the emulated board and the `boardmcp` CLI."""
